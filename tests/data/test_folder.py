import numpy as np
import pytest
from PIL import Image

from keras_refinenet.data.folder import load_folder_dataset, load_voc_dataset
from keras_refinenet.data.voc import VOC_PALETTE


def save_image(path, height, width, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(path)


def save_grey_mask(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8), mode="L").save(path)


def save_palette_mask(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    image.putpalette(np.array(VOC_PALETTE, np.uint8).ravel().tolist())
    image.save(path)


MASK_A = np.array([[0, 1, 2], [2, 255, 0]])
MASK_B = np.array([[1, 1], [0, 0], [255, 2]])


@pytest.fixture
def folder_layout(tmp_path):
    save_image(tmp_path / "images" / "a.png", 2, 3, 10)
    save_image(tmp_path / "images" / "b.jpg", 3, 2, 200)
    save_grey_mask(tmp_path / "masks" / "a.png", MASK_A)
    save_grey_mask(tmp_path / "masks" / "b.png", MASK_B)
    return tmp_path / "images", tmp_path / "masks"


def test_folder_dataset_pairs_by_stem(folder_layout):
    examples = list(load_folder_dataset(*folder_layout, num_classes=3))
    assert len(examples) == 2
    image_a, mask_a = (tensor.numpy() for tensor in examples[0])
    assert image_a.shape == (2, 3, 3) and image_a.dtype == np.uint8
    assert (image_a == 10).all()
    np.testing.assert_array_equal(mask_a, MASK_A)
    image_b, mask_b = (tensor.numpy() for tensor in examples[1])
    assert image_b.shape == (3, 2, 3)
    np.testing.assert_array_equal(mask_b, MASK_B)


def test_unmatched_files_are_named(folder_layout):
    image_dir, mask_dir = folder_layout
    save_image(image_dir / "c.png", 2, 2, 0)
    with pytest.raises(ValueError, match=r"images without mask \['c'\]"):
        load_folder_dataset(image_dir, mask_dir, num_classes=3)


def test_wrong_mask_size(folder_layout):
    image_dir, mask_dir = folder_layout
    save_grey_mask(mask_dir / "a.png", np.zeros((3, 3)))
    with pytest.raises(ValueError, match="Mask size differs.*a.png"):
        load_folder_dataset(image_dir, mask_dir, num_classes=3)


def test_values_outside_classes(folder_layout):
    image_dir, mask_dir = folder_layout
    with pytest.raises(ValueError, match=r"Received: mask=.*a.png.*\[2\]"):
        load_folder_dataset(image_dir, mask_dir, num_classes=2)


def test_rgb_masks_are_rejected(folder_layout):
    image_dir, mask_dir = folder_layout
    save_image(mask_dir / "a.png", 2, 3, 1)
    with pytest.raises(ValueError, match="mode 'RGB'"):
        load_folder_dataset(image_dir, mask_dir, num_classes=3)


@pytest.fixture
def voc_root(tmp_path):
    root = tmp_path / "VOC2012"
    # Palette index 15 (person) with a 255 border; its RGB would be
    # (192, 128, 128), which must not leak into the mask.
    person = np.zeros((4, 5), np.uint8)
    person[1:3, 1:4] = 255
    person[2, 2] = 15
    save_palette_mask(root / "SegmentationClass" / "2007_000032.png", person)
    save_palette_mask(
        root / "SegmentationClass" / "2007_000039.png",
        np.full((3, 3), 20, np.uint8),
    )
    save_image(root / "JPEGImages" / "2007_000032.jpg", 4, 5, 50)
    save_image(root / "JPEGImages" / "2007_000039.jpg", 3, 3, 60)
    save_image(root / "JPEGImages" / "2008_000001.jpg", 3, 3, 70)
    split_dir = root / "ImageSets" / "Segmentation"
    split_dir.mkdir(parents=True)
    (split_dir / "train.txt").write_text("2007_000039\n")
    (split_dir / "val.txt").write_text("2007_000032\n2007_000039\n")
    return root, person


def test_voc_layout_reads_palette_indices(voc_root):
    root, person = voc_root
    val = list(load_voc_dataset(root, split="val"))
    assert len(val) == 2
    np.testing.assert_array_equal(val[0][1].numpy(), person)
    assert (val[1][1].numpy() == 20).all()
    train = list(load_voc_dataset(root, split="train"))
    assert len(train) == 1 and train[0][0].shape == (3, 3, 3)
    everything = list(load_voc_dataset(root))
    assert len(everything) == 2


def test_voc_split_errors(voc_root):
    root, _ = voc_root
    with pytest.raises(ValueError, match="split='trainval'"):
        load_voc_dataset(root, split="trainval")
    split_dir = root / "ImageSets" / "Segmentation"
    (split_dir / "train.txt").write_text("2008_000001\n")
    with pytest.raises(ValueError, match=r"stems=\['2008_000001'\]"):
        load_voc_dataset(root, split="train")


# === Images as users have them ===

from keras_refinenet.data.folder import image_size, read_image  # noqa: E402


def test_sixteen_bit_png_and_tiff_are_scaled_to_0_255(tmp_path):
    values = np.array([[0, 257], [32896, 65535]], np.uint16)
    expected = np.array([[0, 1], [128, 255]], np.uint8)  # v * 255 / 65535
    for name in ("grey16.png", "grey16.tif"):
        Image.fromarray(values).save(tmp_path / name)
        image = read_image(tmp_path / name)
        assert image.dtype == np.uint8 and image.shape == (2, 2, 3)
        np.testing.assert_array_equal(image[..., 0], expected)
        np.testing.assert_array_equal(image[..., 2], expected)


def test_float_tiff_is_refused(tmp_path):
    Image.fromarray(np.zeros((2, 2), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ValueError, match=r"Received: image=.*f.tif.*'F'"):
        read_image(tmp_path / "f.tif")


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((2, 3, 3), np.uint8)
    pixels[0, 0] = (255, 0, 0)  # red at top-left of the stored image
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # stored image is shown rotated 90 degrees clockwise
    image.save(tmp_path / "rotated.png", exif=exif)
    decoded = read_image(tmp_path / "rotated.png")
    assert decoded.shape == (3, 2, 3)
    assert image_size(tmp_path / "rotated.png") == (2, 3)
    # Rotating clockwise moves the top-left corner to the top-right.
    expected = np.zeros((3, 2, 3), np.uint8)
    expected[0, 1] = (255, 0, 0)
    np.testing.assert_array_equal(decoded, expected)


def test_cmyk_palette_and_rgba_are_converted(tmp_path):
    Image.new("CMYK", (2, 2), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    cmyk = read_image(tmp_path / "c.jpg")
    assert cmyk.shape == (2, 2, 3)
    assert cmyk[0, 0, 0] > 200 and cmyk[0, 0, 1] < 60  # red
    palette = Image.fromarray(np.ones((2, 2), np.uint8), mode="P")
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    palette.save(tmp_path / "p.png")
    np.testing.assert_array_equal(
        read_image(tmp_path / "p.png")[0, 0], [10, 20, 30]
    )
    Image.new("RGBA", (2, 2), (1, 2, 3, 0)).save(tmp_path / "a.png")
    np.testing.assert_array_equal(
        read_image(tmp_path / "a.png")[1, 1], [1, 2, 3]
    )


def test_dataset_reads_exif_rotated_and_16_bit_images(tmp_path):
    image = Image.fromarray(np.zeros((2, 3, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 8
    (tmp_path / "images").mkdir()
    image.save(tmp_path / "images" / "r.png", exif=exif)
    Image.fromarray(np.full((2, 2), 65535, np.uint16)).save(
        tmp_path / "images" / "s.tif"
    )
    save_grey_mask(tmp_path / "masks" / "r.png", np.zeros((3, 2)))
    save_grey_mask(tmp_path / "masks" / "s.png", np.ones((2, 2)))
    examples = list(
        load_folder_dataset(tmp_path / "images", tmp_path / "masks", 2)
    )
    assert examples[0][0].shape == (3, 2, 3)
    assert (examples[1][0].numpy() == 255).all()


def test_unreadable_image_is_named(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"Received: image=.*broken.png"):
        read_image(tmp_path / "broken.png")
