import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from keras_refinenet.cli.main import main  # noqa: E402

PALETTE = [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
# Cityscapes label ids of train ids 0..18 (cityscapesScripts' labels.py).
TRAIN_TO_LABEL_ID = np.array(
    [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
)


def small_model(num_classes):
    import keras

    from keras_refinenet import tiny_refinenet

    keras.utils.set_random_seed(num_classes)
    return tiny_refinenet(num_classes=num_classes)


def reference_ids(model, image):
    inputs = model.preprocessor(image[None].astype(np.float32))
    logits = np.asarray(model(inputs))[0]
    return logits.argmax(-1)


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    model = small_model(3)
    path = tmp_path_factory.mktemp("preset")
    model.save_to_preset(
        path, metadata={"class_names": ["a", "b", "c"], "palette": PALETTE}
    )
    return model, path


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(8)
    folder = tmp_path / "images"
    folder.mkdir()
    rgb = rng.integers(0, 256, size=(40, 52, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, size=(36, 44), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "street.png")
    Image.fromarray(gray).save(folder / "gray.jpg", quality=100)
    return folder, rgb


def test_labels_format_matches_model(preset, image_dir, tmp_path):
    model, preset_dir = preset
    folder, rgb = image_dir
    out = tmp_path / "out"
    code = main(
        [
            "predict",
            "--preset",
            str(preset_dir),
            str(folder),
            "--output",
            str(out),
            "--format",
            "labels",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "gray_labels.png",
        "street_labels.png",
    ]
    labels = np.asarray(Image.open(out / "street_labels.png"))
    np.testing.assert_array_equal(labels, reference_ids(model, rgb))
    assert np.asarray(Image.open(out / "gray_labels.png")).shape == (36, 44)


def test_overlay_with_tiles_and_tta(preset, image_dir, tmp_path):
    model, preset_dir = preset
    folder, rgb = image_dir
    out = tmp_path / "out"
    code = main(
        [
            "predict",
            "--preset",
            str(preset_dir),
            str(folder / "street.png"),
            "--output",
            str(out),
            "--tile",
            "32",
            "--tta",
            "multiscale-flip",
            "--scales",
            "1.0",
            "1.5",
            "--alpha",
            "0.5",
        ]
    )
    assert code == 0
    class_ids = model.predict_segmentation(
        rgb, tile_size=32, scales=(1.0, 1.5), flip=True
    )
    expected = np.round(
        0.5 * rgb + 0.5 * np.asarray(PALETTE)[class_ids]
    ).astype(np.uint8)
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / "street_overlay.png")), expected
    )
    legend = np.asarray(Image.open(out / "legend.png"))
    assert legend.shape[0] == 3 * 20


def test_cityscapes_submission_writes_label_ids(tmp_path):
    model = small_model(19)
    preset_dir = tmp_path / "preset"
    model.save_to_preset(preset_dir, metadata={"dataset": "cityscapes"})
    rng = np.random.default_rng(9)
    image = rng.integers(0, 256, size=(48, 96, 3), dtype=np.uint8)
    source = tmp_path / "leftImg8bit" / "test" / "berlin"
    source.mkdir(parents=True)
    Image.fromarray(image).save(source / "berlin_000123_000019_leftImg8bit.png")
    out = tmp_path / "results"
    code = main(
        [
            "predict",
            "--preset",
            str(preset_dir),
            str(tmp_path / "leftImg8bit"),
            "--output",
            str(out),
            "--format",
            "cityscapes-submission",
        ]
    )
    assert code == 0
    written = out / "berlin_000123_000019_leftImg8bit.png"
    with Image.open(written) as result:
        assert result.mode == "L"
        label_ids = np.asarray(result)
    expected = TRAIN_TO_LABEL_ID[reference_ids(model, image)]
    np.testing.assert_array_equal(label_ids, expected)


def test_errors_give_exit_codes(preset, image_dir, tmp_path, capsys):
    _, preset_dir = preset
    folder, _ = image_dir
    args = ["predict", "--preset", str(preset_dir), "--output", str(tmp_path)]
    assert main([*args, str(tmp_path / "missing.png")]) == 2
    assert "missing.png" in capsys.readouterr().err
    code = main([*args, str(folder), "--format", "cityscapes-submission"])
    assert code == 2
    assert "<city>_<seq>_<frame>" in capsys.readouterr().err
    assert main([*args, str(folder), "--tile", "4"]) == 2
    (folder / "broken.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "tiny.png")
    assert main([*args, str(folder), "--format", "labels"]) == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "at least 32x32" in err
    assert (tmp_path / "street_labels.png").is_file()
