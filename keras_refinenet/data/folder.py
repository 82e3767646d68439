"""Segmentation datasets from folders of images and label PNGs.

Two layouts are supported: any image folder with a mask folder whose
single-channel PNGs share the image file stems, and the PASCAL VOC layout
(`JPEGImages/`, `SegmentationClass/` palette PNGs and optional
`ImageSets/Segmentation/<split>.txt` lists). Palette PNGs are read as
palette indices, never as RGB colours.

Images are decoded with Pillow (`read_image`): the EXIF orientation is
applied, palette, grey, CMYK and RGBA images are converted to RGB, and
16-bit images (PNG, TIFF) are scaled from 0..65535 to 0..255; floating
point images are refused.
"""

import pathlib

import numpy as np
from PIL import Image, ImageOps

from keras_refinenet.constants import IGNORE_LABEL, MAX_PIXEL_VALUE

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
)
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
MAX_SIXTEEN_BIT_VALUE = 65535
EXIF_ORIENTATION_TAG = 0x0112
# Orientations 5..8 rotate by 90 degrees (width and height swap).
EXIF_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)
MASK_EXTENSION = ".png"
SINGLE_CHANNEL_MODES = ("L", "P", "I", "I;16")
VOC_IMAGE_DIR = "JPEGImages"
VOC_MASK_DIR = "SegmentationClass"
VOC_SPLIT_DIR = pathlib.Path("ImageSets", "Segmentation")


def _files_by_stem(folder, extensions, argument):
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise ValueError(
            f"`{argument}` must be an existing folder. "
            f"Received: {argument}={str(folder)!r}"
        )
    files = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in extensions:
            continue
        if path.stem in files:
            raise ValueError(
                f"Two files in `{argument}` share the stem {path.stem!r}. "
                f"Received: {str(files[path.stem])!r} and {str(path)!r}"
            )
        files[path.stem] = path
    return files


def _scaled_sixteen_bit(image, path):
    values = np.asarray(image, dtype=np.float64)
    if values.max(initial=0) > MAX_SIXTEEN_BIT_VALUE or values.min() < 0:
        raise ValueError(
            "Integer images must hold 8- or 16-bit values. "
            f"Received: image={str(path)!r} with values "
            f"{values.min():.0f}..{values.max():.0f}"
        )
    grey = np.rint(values * MAX_PIXEL_VALUE / MAX_SIXTEEN_BIT_VALUE)
    return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=-1)


def open_image(path):
    """An image file opened with Pillow, EXIF orientation applied.

    Args:
        path: path of a jpg, png, bmp, tiff or webp file.

    Returns:
        A loaded `PIL.Image.Image` in the file's own mode.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "grey.png")
    >>> Image.fromarray(np.zeros((2, 3), np.uint8)).save(path)
    >>> open_image(path).mode
    'L'
    """
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(
            f"Cannot read the image ({error}). Received: image={str(path)!r}"
        ) from None
    return image


def rgb_pixels(image, path):
    """The pixels of an opened image as RGB `uint8`, the way training sees
    them: 16-bit images scaled from 0..65535 to 0..255, every other 8-bit
    mode converted to RGB (alpha dropped); floating-point images refused.

    Args:
        image: a `PIL.Image.Image` (see `open_image`).
        path: its file, named in errors.

    Returns:
        `uint8 (H, W, 3)` numpy array.

    Example:

    >>> rgb_pixels(Image.new("L", (3, 2), 7), "grey.png")[0, 0].tolist()
    [7, 7, 7]
    """
    if image.mode == "F":
        raise ValueError(
            "Floating-point images are not supported; save them as 8- or "
            f"16-bit. Received: image={str(path)!r} with mode 'F'"
        )
    if image.mode in SIXTEEN_BIT_MODES:
        return _scaled_sixteen_bit(image, path)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def read_image(path):
    """Reads an image file as RGB `uint8`, the way training sees it.

    The EXIF orientation is applied; palette, grey, CMYK, RGBA and other
    8-bit modes are converted to RGB (alpha dropped); 16-bit images are
    scaled from 0..65535 to 0..255. Floating-point images are refused.

    Args:
        path: path of a jpg, png, bmp, tiff or webp file.

    Returns:
        `uint8 (H, W, 3)` numpy array.

    Example:

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "grey16.png")
    >>> Image.fromarray(np.full((2, 2), 65535, np.uint16)).save(path)
    >>> image = read_image(path)
    >>> image.shape, int(image.max())
    ((2, 2, 3), 255)
    """
    return rgb_pixels(open_image(path), path)


def image_size(path):
    """`(width, height)` of an image after its EXIF orientation."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(
            f"Cannot read the image ({error}). Received: image={str(path)!r}"
        ) from None
    if orientation in EXIF_TRANSPOSING_ORIENTATIONS:
        return height, width
    return width, height


def read_mask(path):
    """Reads a single-channel label PNG (palette indices for `P` PNGs).

    Args:
        path: path of the PNG.

    Returns:
        `uint8 (H, W)` numpy array of label values.

    Example:

    >>> mask = read_mask("SegmentationClass/2007_000032.png")  # doctest: +SKIP
    """
    try:
        with Image.open(path) as image:
            mode = image.mode
            mask = np.asarray(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(
            f"Cannot read the mask ({error}). Received: mask={str(path)!r}"
        ) from None
    if mode not in SINGLE_CHANNEL_MODES:
        raise ValueError(
            "Masks must be single-channel or palette PNGs holding class "
            f"ids (run `keras-refinenet inspect-data` for hints). "
            f"Received: mask={str(path)!r} with mode {mode!r}"
        )
    if mask.max(initial=0) > IGNORE_LABEL:
        raise ValueError(
            f"Mask values must fit in 0..{IGNORE_LABEL}. "
            f"Received: mask={str(path)!r} with maximum {mask.max()}"
        )
    return mask.astype(np.uint8)


def check_pair(image_path, mask_path, num_classes, ignore_label=IGNORE_LABEL):
    """Checks that a mask matches its image size and holds valid classes.

    Args:
        image_path: path of the image.
        mask_path: path of the mask.
        num_classes: number of classes; values must be below it or equal
            `ignore_label`.
        ignore_label: the ignore value.

    Example:

    >>> check_pair("a.jpg", "a.png", num_classes=21)  # doctest: +SKIP
    """
    mask = read_mask(mask_path)
    width, height = image_size(image_path)
    if mask.shape != (height, width):
        raise ValueError(
            "Mask size differs from its image size. Received: "
            f"mask={str(mask_path)!r} of size {mask.shape[::-1]} (w, h), "
            f"image={str(image_path)!r} of size {(width, height)}"
        )
    values = np.unique(mask)
    bad = values[(values >= num_classes) & (values != ignore_label)]
    if bad.size:
        raise ValueError(
            f"Mask values must be below num_classes={num_classes} or equal "
            f"{ignore_label}. Received: mask={str(mask_path)!r} with values "
            f"{bad.tolist()}"
        )


def match_image_mask_pairs(image_dir, mask_dir, stems=None):
    """Pairs images and masks by file stem.

    Args:
        image_dir: folder of images (jpg, png, bmp).
        mask_dir: folder of single-channel PNG masks.
        stems: optional list of stems to use; otherwise every image must
            have a mask and every mask an image.

    Returns:
        Sorted list of `(image_path, mask_path)` string pairs.

    Example:

    >>> pairs = match_image_mask_pairs("images/", "masks/")  # doctest: +SKIP
    """
    images = _files_by_stem(image_dir, IMAGE_EXTENSIONS, "image_dir")
    masks = _files_by_stem(mask_dir, (MASK_EXTENSION,), "mask_dir")
    if stems is None:
        unmatched_images = sorted(set(images) - set(masks))
        unmatched_masks = sorted(set(masks) - set(images))
        if unmatched_images or unmatched_masks:
            raise ValueError(
                "Every image needs a mask with the same file stem and vice "
                f"versa. Received: images without mask {unmatched_images[:5]}"
                f", masks without image {unmatched_masks[:5]} (image_dir="
                f"{str(image_dir)!r}, mask_dir={str(mask_dir)!r})"
            )
        stems = sorted(images)
    missing = [
        stem for stem in stems if stem not in images or stem not in masks
    ]
    if missing:
        raise ValueError(
            "Listed examples lack an image or a mask. "
            f"Received: stems={missing[:5]} (image_dir={str(image_dir)!r}, "
            f"mask_dir={str(mask_dir)!r})"
        )
    if not stems:
        raise ValueError(
            f"No images found. Received: image_dir={str(image_dir)!r}"
        )
    return [(str(images[stem]), str(masks[stem])) for stem in stems]


def pairs_dataset(pairs):
    """A `tf.data.Dataset` of `(image, mask)` read from path pairs."""
    import tensorflow as tf

    image_paths, mask_paths = zip(*pairs)

    def load_pair(image_path, mask_path):
        # Pillow decodes what tf.io cannot (EXIF orientation, TIFF, CMYK).
        image = tf.numpy_function(
            lambda path: read_image(path.decode()), [image_path], tf.uint8
        )
        image = tf.ensure_shape(image, (None, None, 3))
        mask = tf.numpy_function(
            lambda path: read_mask(path.decode()), [mask_path], tf.uint8
        )
        mask = tf.ensure_shape(mask, (None, None))
        return image, mask

    dataset = tf.data.Dataset.from_tensor_slices(
        (list(image_paths), list(mask_paths))
    )
    return dataset.map(load_pair, num_parallel_calls=tf.data.AUTOTUNE)


def load_folder_dataset(
    image_dir, mask_dir, num_classes, stems=None, validate=True
):
    """A `tf.data.Dataset` of `(image, mask)` from two folders.

    Args:
        image_dir: folder of images.
        mask_dir: folder of single-channel (grey or palette) PNG masks with
            the image stems; 255 marks ignored pixels.
        num_classes: number of classes.
        stems: optional subset of stems, in order.
        validate: read every mask once up front to check sizes and values.

    Returns:
        A dataset of `uint8 (H, W, 3)` images and `uint8 (H, W)` masks.

    Example:

    >>> dataset = load_folder_dataset(  # doctest: +SKIP
    ...     "images/", "masks/", num_classes=5
    ... )
    """
    if num_classes < 1:
        raise ValueError(
            "`num_classes` must be a positive integer. "
            f"Received: num_classes={num_classes}"
        )
    pairs = match_image_mask_pairs(image_dir, mask_dir, stems)
    if validate:
        for image_path, mask_path in pairs:
            check_pair(image_path, mask_path, num_classes)
    return pairs_dataset(pairs)


def read_split_file(path):
    """Stems listed one per line in a split file such as `train.txt`."""
    with open(path) as split_file:
        return [line.strip() for line in split_file if line.strip()]


def load_voc_dataset(root, split=None, num_classes=21, validate=True):
    """A PASCAL VOC style folder as a dataset of `(image, mask)`.

    Args:
        root: folder holding `JPEGImages/` and `SegmentationClass/`
            (e.g. `VOCdevkit/VOC2012`).
        split: name of a list in `ImageSets/Segmentation/` (`"train"`,
            `"val"`, ...), or `None` for every mask in `SegmentationClass/`.
        num_classes: number of classes (21 for VOC).
        validate: check mask sizes and values up front.

    Returns:
        A dataset of `uint8 (H, W, 3)` images and `uint8 (H, W)` masks
        (palette indices; 255 on object borders).

    Example:

    >>> dataset = load_voc_dataset(  # doctest: +SKIP
    ...     "VOCdevkit/VOC2012", split="val"
    ... )
    """
    root = pathlib.Path(root)
    image_dir = root / VOC_IMAGE_DIR
    mask_dir = root / VOC_MASK_DIR
    if split is None:
        stems = sorted(_files_by_stem(mask_dir, (MASK_EXTENSION,), "mask_dir"))
    else:
        split_path = root / VOC_SPLIT_DIR / f"{split}.txt"
        if not split_path.is_file():
            raise ValueError(
                f"No split list {str(split_path)!r}. "
                f"Received: root={str(root)!r}, split={split!r}"
            )
        stems = read_split_file(split_path)
    return load_folder_dataset(
        image_dir, mask_dir, num_classes, stems=stems, validate=validate
    )
