import numpy as np
import pytest
from PIL import Image

from keras_refinenet.inference import visualize


def test_colorize_maps_ids_and_ignore_label():
    palette = [[10, 20, 30], [40, 50, 60]]
    label_map = np.array([[0, 1], [255, 0]])
    colors = visualize.colorize(label_map, palette, ignore_color=(1, 2, 3))
    expected = np.array(
        [[[10, 20, 30], [40, 50, 60]], [[1, 2, 3], [10, 20, 30]]], np.uint8
    )
    np.testing.assert_array_equal(colors, expected)
    assert colors.dtype == np.uint8


def test_colorize_refuses_ids_without_colour():
    with pytest.raises(ValueError, match="without a palette colour"):
        visualize.colorize(np.array([[2]]), [[0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match="integer"):
        visualize.colorize(np.array([[0.5]]))


def test_overlay_blends_by_alpha_and_keeps_ignored_pixels():
    image = np.array([[[100, 0, 200], [50, 60, 70]]], np.uint8)
    label_map = np.array([[1, 255]])
    palette = [[0, 0, 0], [200, 100, 0]]
    result = visualize.overlay(image, label_map, alpha=0.25, palette=palette)
    # 0.75 * image + 0.25 * colour, computed by hand.
    assert result[0, 0].tolist() == [125, 25, 150]
    assert result[0, 1].tolist() == [50, 60, 70]
    with pytest.raises(ValueError, match="alpha"):
        visualize.overlay(image, label_map, alpha=1.5, palette=palette)


def test_preset_palettes_match_data_modules():
    palette, names = visualize.preset_palette("refinenet101_cityscapes")
    assert names[0] == "road" and names[-1] == "bicycle"
    assert palette.shape == (19, 3)
    assert palette[13].tolist() == [0, 0, 142]  # car
    palette, names = visualize.preset_palette("refinenet101_voc")
    assert len(names) == 21 and palette[15].tolist() == [192, 128, 128]
    palette, names = visualize.preset_palette("refinenet50", num_classes=4)
    assert palette.shape == (4, 3) and names[3] == "class_3"


def test_legend_has_one_swatch_row_per_class():
    palette = [[255, 0, 0], [0, 0, 255], [0, 255, 0]]
    image = visualize.legend(["a", "bb", "ccc"], palette)
    row = visualize.LEGEND_ROW_HEIGHT
    assert image.shape[0] == 3 * row
    swatch_center = visualize.LEGEND_PADDING + visualize.LEGEND_SWATCH_SIZE // 2
    for index, color in enumerate(palette):
        assert image[index * row + row // 2, swatch_center].tolist() == color


def test_write_png_round_trip(tmp_path):
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    ids = np.array([[0, 18], [255, 7]], np.int32)
    visualize.write_png(rgb, tmp_path / "sub" / "rgb.png")
    visualize.write_png(ids, tmp_path / "ids.png")
    with Image.open(tmp_path / "sub" / "rgb.png") as image:
        np.testing.assert_array_equal(np.asarray(image), rgb)
    with Image.open(tmp_path / "ids.png") as image:
        assert image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), ids)
    with pytest.raises(ValueError, match="uint8"):
        visualize.write_png(np.array([[300]]), tmp_path / "bad.png")
