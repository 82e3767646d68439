"""Image files for inference: finding them, decoding them, and the
test-time augmentation named on a command line.

Unlike training (`data.folder.read_image`, always RGB), inference keeps
grey and RGBA pixels as they are, so `predict_segmentation` can accept
grey images and refuse transparent ones.
"""

import pathlib

import numpy as np

from keras_refinenet.data import folder
from keras_refinenet.inference.predict import CITYSCAPES_TTA_SCALES

# Pillow modes `predict_segmentation` takes as they are.
PASSTHROUGH_MODES = ("RGB", "RGBA", "L")
PALETTE_MODE = "P"
TTA_NONE = "none"
TTA_FLIP = "flip"
TTA_MULTISCALE = "multiscale"
TTA_MULTISCALE_FLIP = "multiscale-flip"
TTA_CHOICES = (TTA_NONE, TTA_FLIP, TTA_MULTISCALE, TTA_MULTISCALE_FLIP)
SINGLE_SCALE = (1.0,)


def collect_images(inputs):
    """Image files among `inputs` (files, or folders searched recursively).

    Files given directly are kept whatever their extension; in folders,
    files with one of `data.folder.IMAGE_EXTENSIONS` are found.

    Args:
        inputs: paths of image files or folders.

    Returns:
        List of `pathlib.Path`, in the order of `inputs`, each folder's
        images sorted.

    Example:

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.png", "a.jpg", "notes.txt"):
    ...     (root / name).touch()
    >>> [path.name for path in collect_images([root])]
    ['a.jpg', 'b.png']
    """
    paths = []
    for item in map(pathlib.Path, inputs):
        if item.is_dir():
            paths.extend(
                sorted(
                    path
                    for path in item.rglob("*")
                    if path.suffix.lower() in folder.IMAGE_EXTENSIONS
                )
            )
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(
                f"No such image file or folder. Received: images={str(item)!r}"
            )
    return paths


def read_image(path):
    """Pixels of an image file as uint8 `(h, w)`, `(h, w, 3)` or RGBA.

    The EXIF orientation is applied; palette, CMYK and other modes become
    RGB (palette images with transparency become RGBA); 16-bit images are
    scaled to 0..255 and floating-point ones refused, as in training.

    Args:
        path: path of a jpg, png, bmp, tiff or webp file.

    Returns:
        `uint8` numpy array: `(h, w)` for grey images, `(h, w, 4)` for
        RGBA, else `(h, w, 3)`.

    Example:

    >>> import tempfile, os
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "grey.png")
    >>> Image.fromarray(np.zeros((2, 3), np.uint8)).save(path)
    >>> read_image(path).shape
    (2, 3)
    """
    image = folder.open_image(path)
    if image.mode == PALETTE_MODE and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode not in PASSTHROUGH_MODES:
        return folder.rgb_pixels(image, path)
    return np.asarray(image, dtype=np.uint8)


def tta_options(tta=TTA_NONE, scales=None):
    """The `predict_segmentation` scales and flip of a `TTA_CHOICES` name.

    Args:
        tta: `"none"`, `"flip"` (horizontal flip), `"multiscale"` (the
            authors' Cityscapes scales, `CITYSCAPES_TTA_SCALES`) or
            `"multiscale-flip"`.
        scales: scales to use instead of the default ones.

    Returns:
        A dict with `scales` (a tuple) and `flip` (a bool).

    Example:

    >>> tta_options("multiscale-flip")
    {'scales': (0.5, 0.75, 1.0, 1.25, 1.5, 1.75), 'flip': True}
    >>> tta_options("flip", scales=[1.0, 2.0])
    {'scales': (1.0, 2.0), 'flip': True}
    """
    if tta not in TTA_CHOICES:
        raise ValueError(
            f"`tta` must be one of {TTA_CHOICES}. Received: tta={tta!r}"
        )
    if scales:
        scales = tuple(float(scale) for scale in scales)
    elif tta in (TTA_MULTISCALE, TTA_MULTISCALE_FLIP):
        scales = CITYSCAPES_TTA_SCALES
    else:
        scales = SINGLE_SCALE
    return {"scales": scales, "flip": tta in (TTA_FLIP, TTA_MULTISCALE_FLIP)}
