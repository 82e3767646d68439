import numpy as np
import pytest
from PIL import Image

from keras_refinenet.data.inspection import (
    ERROR,
    WARNING,
    guess_palette,
    inspect_dataset,
    suggest_crop_size,
    write_augmented_sheet,
)
from keras_refinenet.data.voc import VOC_PALETTE

NUM_CLASSES = 3


def save_image(path, height=8, width=10, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)


def save_mask(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(mask, np.uint8), mode="L").save(path)


def good_mask(height=8, width=10):
    mask = np.zeros((height, width), np.uint8)
    mask[:4] = 1
    mask[6:, 5:] = 2
    mask[0, 0] = 255
    return mask


@pytest.fixture
def dataset(tmp_path):
    """root/{train,val}/{images,masks} with two good pairs in train."""
    root = tmp_path / "data"
    for split, stems in (("train", ("a", "b")), ("val", ("c",))):
        for stem in stems:
            save_image(root / split / "images" / f"{stem}.png")
            save_mask(root / split / "masks" / f"{stem}.png", good_mask())
    return root


def checks(report, level=None):
    return {f.check for f in report.findings if level in (None, f.level)}


def test_good_dataset_counts_frequencies_and_suggestions(dataset):
    report = inspect_dataset(dataset, NUM_CLASSES)
    assert report.ok and report.layout == "folder"
    assert report.splits["train"] == {"images": 2, "masks": 2, "pairs": 2}
    assert report.splits["val"]["pairs"] == 1
    # Per mask: class 1 rows 0..3 minus the ignored pixel = 39, class 2 a
    # 2x5 block = 10, class 0 the rest = 80 - 39 - 10 - 1 = 30.
    assert report.pixel_counts == [90, 117, 30]
    assert report.ignored_pixels == 3
    # Every class is in every (80-pixel) image, so median frequency
    # weights are median(f) / f with f = counts / 240.
    frequencies = np.array([90, 117, 30]) / 240
    np.testing.assert_allclose(
        report.class_weights["median"], np.median(frequencies) / frequencies
    )
    np.testing.assert_allclose(
        report.class_weights["inverse"], 237 / (3 * np.array([90, 117, 30]))
    )
    assert report.image_sizes == {(8, 10): 3}
    assert report.suggested_crop == (32, 32)
    text = report.format()
    assert "ok: training can start" in text and "--class-weights" in text


def test_missing_files_are_errors(dataset):
    save_image(dataset / "train" / "images" / "lonely.png")
    save_mask(dataset / "train" / "masks" / "orphan.png", good_mask())
    report = inspect_dataset(dataset, NUM_CLASSES)
    assert not report.ok
    found = {f.check: f for f in report.errors}
    assert found["image_without_mask"].files[0].endswith("lonely.png")
    assert found["mask_without_image"].files[0].endswith("orphan.png")
    assert "not ok" in report.format()


def test_size_mismatch_and_exif_hint(dataset):
    save_mask(dataset / "train" / "masks" / "a.png", np.zeros((5, 5)))
    # Stored 8x10 like its mask, but shown (and read) turned to 10x8.
    rotated = Image.fromarray(np.zeros((8, 10, 3), np.uint8))
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(dataset / "train" / "images" / "b.png", exif=exif)
    report = inspect_dataset(dataset, NUM_CLASSES)
    found = {f.check: f for f in report.errors}
    assert found["size_mismatch"].files[0].endswith("a.png")
    assert "EXIF" in found["size_mismatch_exif"].message


def test_rgb_masks_and_their_palette(dataset):
    colour = np.zeros((8, 10, 3), np.uint8)
    colour[:4] = VOC_PALETTE[1]
    colour[4:] = VOC_PALETTE[15]
    Image.fromarray(colour).save(dataset / "train" / "masks" / "a.png")
    grey = np.repeat(good_mask()[..., None], 3, axis=-1)
    Image.fromarray(grey).save(dataset / "train" / "masks" / "b.png")
    report = inspect_dataset(dataset, NUM_CLASSES)
    found = {f.check: f for f in report.errors}
    assert "PASCAL VOC palette" in found["rgb_mask_PASCAL VOC"].message
    assert "single-channel" in found["rgb_grey_mask"].message


def test_palette_masks_are_indices(dataset):
    mask = Image.fromarray(good_mask(), mode="P")
    mask.putpalette(np.array(VOC_PALETTE, np.uint8).ravel().tolist())
    mask.save(dataset / "train" / "masks" / "a.png")
    report = inspect_dataset(dataset, NUM_CLASSES)
    assert report.ok
    palette = [f for f in report.findings if f.check == "palette_mask"][0]
    assert "PASCAL VOC" in palette.message and palette.count == 1


def test_values_outside_classes(dataset):
    mask = good_mask()
    mask[7, 0] = 9
    save_mask(dataset / "val" / "masks" / "c.png", mask)
    report = inspect_dataset(dataset, NUM_CLASSES)
    found = {f.check: f for f in report.errors}
    assert "[9]" in found["values_out_of_range"].message
    assert found["values_out_of_range"].files[0].endswith("c.png")


def test_one_based_labels(tmp_path):
    root = tmp_path / "data"
    for stem in ("a", "b"):
        save_image(root / "images" / f"{stem}.png")
        mask = good_mask()
        save_mask(
            root / "masks" / f"{stem}.png", np.where(mask < 255, mask + 1, 255)
        )
    report = inspect_dataset(root, NUM_CLASSES)
    assert "off_by_one" in checks(report, ERROR)
    assert "values_out_of_range" in checks(report, ERROR)
    # With one class more, 1..3 is in range but 0 is still unused.
    warned = inspect_dataset(root, NUM_CLASSES + 1)
    assert warned.ok and "class_zero_unused" in checks(warned, WARNING)


def test_empty_masks_are_warnings(dataset):
    save_mask(dataset / "train" / "masks" / "a.png", np.full((8, 10), 255))
    save_mask(dataset / "train" / "masks" / "b.png", np.zeros((8, 10)))
    report = inspect_dataset(dataset, NUM_CLASSES)
    assert report.ok
    assert {"empty_mask", "background_only_mask"} <= checks(report, WARNING)


def test_unreadable_files(dataset):
    (dataset / "train" / "images" / "a.png").write_bytes(b"broken")
    (dataset / "train" / "masks" / "b.png").write_bytes(b"broken")
    report = inspect_dataset(dataset, NUM_CLASSES)
    assert {"unreadable_image", "unreadable_mask"} <= checks(report, ERROR)


def test_voc_layout_allows_images_without_masks(tmp_path):
    root = tmp_path / "VOC2012"
    save_image(root / "JPEGImages" / "x.jpg")
    save_image(root / "JPEGImages" / "unlabelled.jpg")
    mask = Image.fromarray(good_mask(), mode="P")
    mask.putpalette(np.array(VOC_PALETTE, np.uint8).ravel().tolist())
    (root / "SegmentationClass").mkdir()
    mask.save(root / "SegmentationClass" / "x.png")
    report = inspect_dataset(root, 21)
    assert report.layout == "voc" and report.ok
    assert report.splits["all"]["pairs"] == 1
    split_dir = root / "ImageSets" / "Segmentation"
    split_dir.mkdir(parents=True)
    (split_dir / "train.txt").write_text("x\nunlabelled\n")
    listed = inspect_dataset(root, 21)
    assert "image_without_mask" in checks(listed, ERROR)


def test_cityscapes_layout_maps_label_ids(tmp_path):
    root = tmp_path / "cityscapes"
    stem = "aachen_000000_000019"
    save_image(
        root / "leftImg8bit" / "train" / "aachen" / f"{stem}_leftImg8bit.png"
    )
    label_ids = np.full((8, 10), 7, np.uint8)  # 7 is road, train id 0
    label_ids[0] = 26  # car, train id 13
    label_ids[1] = 0  # unlabeled, ignored
    save_mask(
        root / "gtFine" / "train" / "aachen" / f"{stem}_gtFine_labelIds.png",
        label_ids,
    )
    report = inspect_dataset(root, 19)
    assert report.layout == "cityscapes" and report.ok
    assert report.pixel_counts[0] == 60 and report.pixel_counts[13] == 10
    assert report.ignored_pixels == 10


def test_missing_folder_and_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="Received: root="):
        inspect_dataset(tmp_path / "nothing", NUM_CLASSES)
    with pytest.raises(ValueError, match="No dataset found"):
        inspect_dataset(tmp_path, NUM_CLASSES)
    with pytest.raises(ValueError, match="Received: layout='coco'"):
        inspect_dataset(tmp_path, NUM_CLASSES, layout="coco")


def test_guess_palette_and_crop_size():
    assert guess_palette([VOC_PALETTE[1], VOC_PALETTE[2]]) == "PASCAL VOC"
    assert guess_palette([(128, 64, 128), (70, 70, 70)]) == "Cityscapes"
    assert guess_palette([(1, 2, 3)]) is None
    assert suggest_crop_size({(1024, 2048): 2}) == (512, 512)
    assert suggest_crop_size({(20, 100): 1}) == (32, 96)


def test_augmented_sheet(dataset, tmp_path):
    report = inspect_dataset(dataset, NUM_CLASSES)
    path = write_augmented_sheet(
        report.pairs, tmp_path / "sheet.png", NUM_CLASSES, (8, 8), count=3
    )
    sheet = np.asarray(Image.open(path))
    # 3 rows of 8 px with 4 px gaps; image | 4 px gap | mask.
    assert sheet.shape == (3 * 8 + 2 * 4, 8 + 4 + 8, 3)
    assert (sheet[:8, :8] > 0).any()
