"""Image files for inference: collection, decoding, TTA options."""

import numpy as np
import pytest
from PIL import Image

from keras_refinenet.inference.images import (
    TTA_CHOICES,
    collect_images,
    read_image,
    tta_options,
)
from keras_refinenet.inference.predict import CITYSCAPES_TTA_SCALES

EXIF_ORIENTATION_TAG = 0x0112
ROTATE_90_CLOCKWISE = 6


def test_collect_images_keeps_the_order_of_inputs(tmp_path):
    images = tmp_path / "images"
    (images / "nested").mkdir(parents=True)
    for name in ("b.png", "a.JPG", "nested/c.webp", "notes.txt", "mask.npy"):
        (images / name).touch()
    direct = tmp_path / "z.custom"
    direct.touch()
    found = collect_images([direct, images])
    assert [path.relative_to(tmp_path).as_posix() for path in found] == [
        "z.custom",
        "images/a.JPG",
        "images/b.png",
        "images/nested/c.webp",
    ]
    assert collect_images([]) == []


def test_collect_images_names_a_missing_input(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError, match="Received: images="):
        collect_images([missing])


def test_grey_and_rgba_pass_through(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_image(tmp_path / "grey.png"), grey)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = [[255, 0], [10, 255]]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgba)


def test_palette_images(tmp_path):
    indices = np.array([[0, 1], [1, 0]], np.uint8)
    palette = [10, 20, 30, 200, 100, 50] + [0] * (256 * 3 - 6)
    opaque = Image.fromarray(indices, "P")
    opaque.putpalette(palette)
    opaque.save(tmp_path / "opaque.png")
    decoded = read_image(tmp_path / "opaque.png")
    assert decoded.shape == (2, 2, 3)
    assert tuple(decoded[0, 1]) == (200, 100, 50)
    opaque.save(tmp_path / "transparent.png", transparency=0)
    decoded = read_image(tmp_path / "transparent.png")
    assert decoded.shape == (2, 2, 4)
    np.testing.assert_array_equal(decoded[..., 3], [[0, 255], [255, 0]])


def test_cmyk_becomes_rgb(tmp_path):
    Image.new("CMYK", (3, 2), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    decoded = read_image(tmp_path / "c.jpg")
    assert decoded.shape == (2, 3, 3) and decoded.dtype == np.uint8
    assert decoded[..., 0].min() > 200 and decoded[..., 1:].max() < 60


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((2, 3, 3), np.uint8)
    pixels[0, 0] = (255, 0, 0)  # top-left red
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[EXIF_ORIENTATION_TAG] = ROTATE_90_CLOCKWISE
    image.save(tmp_path / "rotated.png", exif=exif)
    decoded = read_image(tmp_path / "rotated.png")
    # Turned 90 degrees clockwise: the top-left corner goes top-right.
    assert decoded.shape == (3, 2, 3)
    assert tuple(decoded[0, 1]) == (255, 0, 0)


def test_sixteen_bit_is_scaled_and_float_refused(tmp_path):
    values = np.array([[0, 65535], [257, 32896]], np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    decoded = read_image(tmp_path / "deep.png")
    # 0..65535 to 0..255: x * 255 / 65535, rounded; grey to RGB.
    expected = np.array([[0, 255], [1, 128]], np.uint8)
    grey_as_rgb = np.repeat(expected[..., np.newaxis], 3, axis=-1)
    np.testing.assert_array_equal(decoded, grey_as_rgb)
    Image.fromarray(np.zeros((2, 2), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ValueError, match="Floating-point"):
        read_image(tmp_path / "f.tif")


def test_unreadable_file_is_a_value_error(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="Received: image="):
        read_image(tmp_path / "broken.png")


@pytest.mark.parametrize(
    "tta, scales, flip",
    [
        ("none", (1.0,), False),
        ("flip", (1.0,), True),
        ("multiscale", CITYSCAPES_TTA_SCALES, False),
        ("multiscale-flip", CITYSCAPES_TTA_SCALES, True),
    ],
)
def test_tta_options(tta, scales, flip):
    assert tta in TTA_CHOICES
    assert tta_options(tta) == {"scales": scales, "flip": flip}
    assert tta_options(tta, [0.5, 2])["scales"] == (0.5, 2.0)


def test_unknown_tta_is_refused():
    with pytest.raises(ValueError, match="Received: tta='mirror'"):
        tta_options("mirror")
