"""The `predict_tta` signature: tiling and TTA inside the exported graph."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import MAX_PIXELS, small_refinenet

from keras_refinenet.export.saved_model import export_saved_model
from keras_refinenet.export.tta import (
    class_ids,
    graph_tile_starts,
    graph_tile_window,
)
from keras_refinenet.inference.predict import (
    predict_segmentation,
    tile_starts,
    tile_window,
)

ODD_SIZE = (97, 133)
TTA_OPTIONS = {
    "tile_size": 64,
    "tile_overlap": 0.25,
    "scales": (0.75, 1.25),
    "flip": True,
}
# Runs the signature in a process that never imports keras_refinenet.
LOAD_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
path, images_path, outputs_path = sys.argv[1:4]
serve = tf.saved_model.load(path).signatures["predict_tta"]
outputs = serve(images=tf.constant(np.load(images_path)))
errors = [e.decode() for e in outputs.pop("error").numpy()]
np.savez(outputs_path, **{k: v.numpy() for k, v in outputs.items()})
imported = sorted(m for m in ("keras_refinenet",) if m in sys.modules)
print(json.dumps({"imported": imported, "errors": errors}))
"""


@pytest.fixture(scope="module")
def tta_model():
    import keras

    keras.utils.set_random_seed(3)
    return small_refinenet()


@pytest.fixture(scope="module")
def tta_export(tta_model, tmp_path_factory):
    return export_saved_model(
        tta_model,
        tmp_path_factory.mktemp("tta_base"),
        max_pixels=MAX_PIXELS,
        **TTA_OPTIONS,
    )


@pytest.fixture(scope="module")
def tta_signatures(tta_export):
    return tf.saved_model.load(str(tta_export)).signatures


def test_graph_tile_grid_matches_by_hand_and_numpy():
    # 97 rows, tiles of 64, overlap 1/4: stride 48, 2 tiles at 0 and 33.
    assert graph_tile_starts(97, 64, 0.25).numpy().tolist() == [0, 33]
    # 133 columns: stride 48, ceil(69 / 48) + 1 = 3 tiles at 0, 34.5, 69;
    # 34.5 rounds half to even.
    assert graph_tile_starts(133, 64, 0.25).numpy().tolist() == [0, 34, 69]
    assert graph_tile_starts(64, 64, 0.25).numpy().tolist() == [0]
    for length in (33, 97, 130, 257):
        for tile in (32, 48, 64):
            for overlap in (0.0, 1 / 3, 0.5, 0.9):
                tile = min(tile, length)
                assert graph_tile_starts(
                    length, tile, overlap
                ).numpy().tolist() == tile_starts(length, tile, overlap), (
                    length,
                    tile,
                    overlap,
                )


def test_graph_tile_window_is_the_tent():
    assert graph_tile_window(3, 2).numpy().tolist() == [
        [0.5, 0.5],
        [1.0, 1.0],
        [0.5, 0.5],
    ]
    np.testing.assert_array_equal(
        graph_tile_window(37, 64).numpy(), tile_window(37, 64)
    )


def test_class_ids_give_void_pixels_255():
    scores = tf.constant([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    assert class_ids(scores).numpy().tolist() == [1, 2, 0]
    assert class_ids(scores, void_channel=2).numpy().tolist() == [1, 255, 0]


def test_signature_matches_predict_segmentation_without_keras_refinenet(
    tta_model, tta_export, tmp_path
):
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, (2, *ODD_SIZE, 3), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_SCRIPT,
            str(tta_export),
            str(tmp_path / "images.npy"),
            str(tmp_path / "outputs.npz"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"imported": [], "errors": ["", ""]}
    outputs = np.load(tmp_path / "outputs.npz")
    expected_ids, expected = predict_segmentation(
        tta_model, images, return_probabilities=True, **TTA_OPTIONS
    )
    assert outputs["probabilities"].shape == (2, *ODD_SIZE, 3)
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=2e-6)
    agreement = np.mean(outputs["class_ids"] == expected_ids)
    assert agreement >= 0.999


def test_tta_exports_get_a_third_signature(tta_signatures):
    assert set(tta_signatures) == {
        "serving_default",
        "predict_image_bytes",
        "predict_tta",
    }


def test_oversized_and_too_small_scales_give_errors(tta_signatures):
    serve = tta_signatures["predict_tta"]
    big = serve(images=tf.zeros((1, 129, 128, 3), tf.uint8))
    assert (
        "exceeds the limit of 16384 pixels" in big["error"][0].numpy().decode()
    )
    assert big["class_ids"].shape == (1, 0, 0)
    # 0.75 * 40 = 30 rows: under the network's 32.
    small = serve(images=tf.zeros((2, 40, 60, 3), tf.uint8))
    assert (
        small["error"].numpy().tolist()
        == [
            b"at scale 0.75 the 40x60 image becomes 30x45, smaller than the "
            b"minimum of 32 pixels"
        ]
        * 2
    )
    assert small["probabilities"].shape == (2, 0, 0, 3)


def test_bad_tta_options_are_refused(tta_model, tmp_path):
    with pytest.raises(ValueError, match="tile_size"):
        export_saved_model(tta_model, tmp_path, tile_size=8)
    with pytest.raises(ValueError, match="scales"):
        export_saved_model(tta_model, tmp_path, scales=(0.0,))
