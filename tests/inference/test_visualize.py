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
    # The authors' Cityscapes model: 19 train ids and the void channel.
    assert names[0] == "road" and names[18] == "bicycle"
    assert names[-1] == "void" and palette.shape == (20, 3)
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


def test_output_names_per_format():
    image = "in/berlin_000123_000019_leftImg8bit.png"
    assert visualize.output_name(image, "overlay") == (
        "berlin_000123_000019_leftImg8bit_overlay.png"
    )
    assert visualize.output_name(image, "labels").endswith("_labels.png")
    assert visualize.output_name(image, "cityscapes-submission") == (
        "berlin_000123_000019_leftImg8bit.png"
    )
    with pytest.raises(ValueError, match="Received: image='cat.png'"):
        visualize.output_name("cat.png", "cityscapes-submission")
    with pytest.raises(ValueError, match="Received: fmt='jpeg'"):
        visualize.output_name("cat.png", "jpeg")
    with pytest.raises(ValueError, match="both be written as 'a_color.png'"):
        visualize.output_names(["x/a.png", "y/a.jpg"], "color")


def test_cityscapes_submission_needs_19_classes():
    visualize.check_output_format("overlay", 3)
    with pytest.raises(ValueError, match="Received: num_classes=3"):
        visualize.check_output_format("cityscapes-submission", 3)


def test_render_prediction_in_every_format():
    palette = np.array([[0, 0, 0], [200, 100, 50]], np.uint8)
    class_ids = np.array([[0, 1]])
    grey = np.array([[100, 100]], np.uint8)
    rgba = np.array([[[100, 100, 100, 7], [100, 100, 100, 7]]], np.uint8)
    # overlay: (1 - 0.5) * 100 + 0.5 * colour, the grey image as RGB.
    expected = [[[50, 50, 50], [150, 100, 75]]]
    for image in (grey, rgba):
        rendered = visualize.render_prediction(
            image, class_ids, "overlay", palette, alpha=0.5
        )
        assert rendered.tolist() == expected
    color = visualize.render_prediction(grey, class_ids, "color", palette)
    assert color.tolist() == [[[0, 0, 0], [200, 100, 50]]]
    labels = visualize.render_prediction(grey, class_ids, "labels")
    assert labels.dtype == np.uint8 and labels.tolist() == [[0, 1]]
    # Cityscapes train ids 0 (road), 18 (bicycle) -> label ids 7, 33.
    submission = visualize.render_prediction(
        grey, np.array([[0, 18]]), "cityscapes-submission"
    )
    assert submission.tolist() == [[7, 33]]


def test_side_by_side_panels():
    image = np.full((2, 2, 3), 100, np.uint8)
    truth = np.array([[0, 1], [1, 255]])
    prediction = np.array([[1, 1], [0, 0]])
    palette = [(0, 0, 0), (200, 0, 0)]
    panel = visualize.side_by_side(image, truth, prediction, palette)
    scale, gap = visualize.PANEL_SCALE, visualize.PANEL_GAP
    width = 2 * scale
    assert panel.shape == (width, 3 * width + 2 * gap, 3)
    assert (panel[:, :width] == 100).all()
    ground_truth = panel[:, width + gap : 2 * width + gap]
    assert tuple(ground_truth[0, scale]) == (200, 0, 0)
    assert tuple(ground_truth[-1, -1]) == (0, 0, 0)
    blended = panel[:, 2 * (width + gap) :]
    # alpha 0.5 blend of 100 with (200, 0, 0) for class 1.
    assert tuple(blended[0, 0]) == (150, 50, 50)
    assert (panel[:, width : width + gap] == visualize.PANEL_GAP_COLOR).all()


def test_example_sheet_has_titles_and_legend():
    image = np.full((8, 8, 3), 100, np.uint8)
    truth = np.zeros((8, 8), int)
    palette = [(0, 0, 0), (200, 0, 0)]
    sheet = visualize.example_sheet(
        image, truth, truth, palette, ["bg", "thing"]
    )
    size, gap = 8 * visualize.PANEL_SCALE, visualize.PANEL_GAP
    title_height = visualize.TITLE_HEIGHT
    titles = sheet[:title_height]
    for index in range(len(visualize.PANEL_TITLES)):
        left = index * (size + gap)
        assert (titles[:, left : left + size] < 128).any()  # text drawn
    panels = sheet[title_height:, : 3 * size + 2 * gap]
    np.testing.assert_array_equal(
        panels[:size], visualize.side_by_side(image, truth, truth, palette)
    )
    key = sheet[title_height:, 3 * size + 3 * gap :]
    assert (key == (200, 0, 0)).all(axis=-1).any()  # the "thing" swatch
