import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    MAX_PIXELS,
    encode,
    reference_outputs,
    small_refinenet,
)

from keras_refinenet.export import saved_model
from keras_refinenet.export.saved_model import export_saved_model


def run_signature(loaded, name, **inputs):
    outputs = loaded.signatures[name](
        **{key: tf.constant(value) for key, value in inputs.items()}
    )
    return {key: value.numpy() for key, value in outputs.items()}


def png_chunk(kind, data):
    body = kind + data
    return (
        struct.pack(">I", len(data))
        + body
        + struct.pack(">I", zlib.crc32(body))
    )


def png_bomb(side):
    """A valid grayscale PNG of side x side black pixels, a few KB long."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = bytes(side + 1)
    data = b"".join(compressor.compress(row) for _ in range(side))
    data += compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


def jpeg_with_size(image, height, width):
    """A JPEG whose SOF segment claims another size."""
    data = bytearray(encode(image, "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_signatures_have_any_size_inputs_and_named_outputs(loaded):
    assert set(loaded.signatures) == {
        "serving_default",
        "predict_image_bytes",
    }
    images_spec = loaded.signatures[
        "serving_default"
    ].structured_input_signature
    assert images_spec[1]["images"].shape.as_list() == [None, None, None, 3]
    assert images_spec[1]["images"].dtype == tf.uint8
    bytes_spec = loaded.signatures[
        "predict_image_bytes"
    ].structured_input_signature
    assert bytes_spec[1]["image_bytes"].dtype == tf.string
    outputs = loaded.signatures["serving_default"].structured_outputs
    assert outputs["class_ids"].dtype == tf.int32
    assert outputs["probabilities"].shape.as_list() == [None, None, None, 3]


@pytest.mark.parametrize("size", [(40, 56), (33, 97)])
def test_images_signature_matches_keras_model(model, loaded, size):
    rng = np.random.default_rng(size[1])
    images = rng.integers(0, 256, size=(2, *size, 3), dtype=np.uint8)
    class_ids, probabilities = reference_outputs(model, images)
    outputs = run_signature(loaded, "serving_default", images=images)
    np.testing.assert_allclose(
        outputs["probabilities"], probabilities, atol=1e-5
    )
    np.testing.assert_array_equal(outputs["class_ids"], class_ids)
    assert outputs["class_ids"].dtype == np.int32
    assert outputs["error"].tolist() == [b"", b""]


def test_bytes_signature_decodes_png_and_jpeg(model, loaded, images):
    class_ids, probabilities = reference_outputs(model, images)
    outputs = run_signature(
        loaded,
        "predict_image_bytes",
        image_bytes=[encode(image) for image in images],
    )
    np.testing.assert_allclose(
        outputs["probabilities"], probabilities, atol=1e-5
    )
    np.testing.assert_array_equal(outputs["class_ids"], class_ids)
    jpeg = encode(images[0], "JPEG", quality=90)
    decoded = tf.io.decode_jpeg(jpeg, channels=3).numpy()
    _, jpeg_probabilities = reference_outputs(model, decoded[None])
    outputs = run_signature(loaded, "predict_image_bytes", image_bytes=[jpeg])
    assert outputs["error"].tolist() == [b""]
    np.testing.assert_allclose(
        outputs["probabilities"], jpeg_probabilities, atol=1e-5
    )


def assert_rejected(outputs, expected_errors):
    errors = [error.decode() for error in outputs["error"]]
    assert len(errors) == len(expected_errors)
    for error, expected in zip(errors, expected_errors):
        assert expected in error
    assert outputs["class_ids"].shape == (len(errors), 0, 0)
    assert outputs["probabilities"].shape == (len(errors), 0, 0, 3)


def test_garbage_and_bombs_get_errors_not_decoded(loaded, images):
    png = encode(images[0])
    bomb = png_bomb(20_000)
    assert len(bomb) < 1_000_000  # 400 megapixels in well under a megabyte
    requests = [
        ([b"not an image at all"], ["not a PNG or JPEG"]),
        ([b""], ["not a PNG or JPEG"]),
        ([png[:20]], ["not a PNG or JPEG"]),
        ([b"\xff\xd8\xff\xe0\x00"], ["not a PNG or JPEG"]),
        ([bomb], [f"20000x20000 pixels exceeds the limit of {MAX_PIXELS}"]),
        (
            [jpeg_with_size(images[0], 60_000, 60_000)],
            ["60000x60000 pixels exceeds"],
        ),
        ([encode(images[0][:20, :20])], ["smaller than 32x32"]),
        ([png, encode(images[1][:33])], ["same size", "same size"]),
        ([png, b"GIF89a"], ["", "not a PNG or JPEG"]),
    ]
    for image_bytes, expected in requests:
        outputs = run_signature(
            loaded, "predict_image_bytes", image_bytes=image_bytes
        )
        assert_rejected(outputs, expected)


def test_corrupt_data_behind_valid_header_is_a_request_error(loaded, images):
    png = encode(images[0])
    with pytest.raises(tf.errors.InvalidArgumentError):
        run_signature(loaded, "predict_image_bytes", image_bytes=[png[:60]])
    # The loaded model keeps serving afterwards.
    outputs = run_signature(loaded, "predict_image_bytes", image_bytes=[png])
    assert outputs["class_ids"].shape == (1, 40, 56)


def test_images_signature_rejects_oversized_and_empty(loaded):
    too_large = np.zeros((1, 129, 128, 3), np.uint8)
    outputs = run_signature(loaded, "serving_default", images=too_large)
    assert_rejected(outputs, ["129x128 pixels exceeds"])
    empty = run_signature(
        loaded, "serving_default", images=np.zeros((0, 40, 40, 3), np.uint8)
    )
    assert empty["class_ids"].shape[0] == 0 and empty["error"].size == 0


LOAD_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
images = np.load(sys.argv[2])
outputs = loaded.signatures["serving_default"](images=tf.constant(images))
np.save(sys.argv[3], outputs["probabilities"].numpy())
forbidden = [name for name in sys.modules
             if name.split(".")[0] in ("keras_refinenet", "keras_cv")]
print(json.dumps(forbidden))
"""


def test_loads_in_a_process_without_keras_refinenet(
    model, exported, images, tmp_path
):
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_SCRIPT,
            str(exported),
            str(tmp_path / "images.npy"),
            str(tmp_path / "probabilities.npy"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    _, probabilities = reference_outputs(model, images)
    np.testing.assert_allclose(
        np.load(tmp_path / "probabilities.npy"), probabilities, atol=1e-5
    )


def test_saved_model_cli_run(model, exported, images, tmp_path):
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run(
        [
            "saved_model_cli",
            "run",
            "--dir",
            str(exported),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"images={tmp_path / 'images.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    class_ids, _ = reference_outputs(model, images)
    np.testing.assert_array_equal(
        np.load(tmp_path / "out" / "class_ids.npy"), class_ids
    )


def test_mixed_precision_export_matches_float32(model, images, tmp_path):
    import keras

    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = small_refinenet()
    finally:
        keras.mixed_precision.set_global_policy(previous)
    mixed.set_weights(model.get_weights())
    path = export_saved_model(mixed, tmp_path, version=3)
    loaded = tf.saved_model.load(str(path))
    outputs = run_signature(loaded, "serving_default", images=images)
    _, probabilities = reference_outputs(model, images)
    assert outputs["probabilities"].dtype == np.float32
    np.testing.assert_allclose(
        outputs["probabilities"], probabilities, atol=1e-2
    )


def test_stride4_model_outputs_are_resized_to_the_input(images):
    from keras_refinenet.inference.predict import predict_segmentation

    model = small_refinenet(upsample_output=False)
    functions = saved_model._ServingFunctions(model, MAX_PIXELS)
    outputs = functions.serve_images(tf.constant(images))
    assert outputs["class_ids"].shape == (2, 40, 56)
    expected_ids, expected = predict_segmentation(
        model, images, return_probabilities=True
    )
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)


def test_versions_and_argument_errors(model, exported):
    model_base = exported.parent
    assert exported.name == "1"
    assert saved_model._next_version(model_base) == 2
    with pytest.raises(FileExistsError, match="already exists"):
        export_saved_model(model, model_base, version=1)
    with pytest.raises(ValueError, match="Received: version=0"):
        export_saved_model(model, model_base, version=0)
    with pytest.raises(ValueError, match="max_pixels"):
        export_saved_model(model, model_base, max_pixels=10)
    assert not [p for p in model_base.iterdir() if p.name.startswith(".tmp")]


@pytest.mark.parametrize(
    "fmt, mode, options",
    [
        ("JPEG", "RGB", {"progressive": True}),
        ("JPEG", "RGB", {"exif": b"Exif\x00\x00" + bytes(3000)}),
        ("JPEG", "L", {}),
        ("PNG", "RGBA", {}),
        ("PNG", "I;16", {}),
        ("PNG", "P", {}),
    ],
)
def test_header_sizes_of_common_encodings(fmt, mode, options):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, (70, 45)).save(buffer, format=fmt, **options)
    height, width, error = saved_model._header_check(
        tf.constant(buffer.getvalue()), MAX_PIXELS
    )
    assert (int(height), int(width), error.numpy()) == (45, 70, b"")
