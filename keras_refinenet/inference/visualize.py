"""Colour palettes, colourized label maps, overlays, legends and PNG output.

Palettes are `uint8` arrays of shape `(num_classes, 3)`. A preset's palette
comes from its metadata (`palette`), falling back to the data modules for
Cityscapes and PASCAL VOC, and to the VOC colour map for anything else.
"""

import pathlib

import numpy as np

from keras_refinenet.constants import (
    IGNORE_LABEL,
    MAX_PIXEL_VALUE,
    RGB_CHANNELS,
)
from keras_refinenet.data.cityscapes import (
    CITYSCAPES_CLASS_NAMES,
    CITYSCAPES_FRAME_ID_PATTERN,
    CITYSCAPES_IMAGE_SUFFIX,
    CITYSCAPES_NUM_CLASSES,
    CITYSCAPES_PALETTE,
    train_ids_to_label_ids,
)
from keras_refinenet.data.datasets import default_class_names
from keras_refinenet.data.voc import VOC_CLASS_NAMES, voc_colormap

IGNORE_COLOR = (0, 0, 0)
DEFAULT_ALPHA = 0.5
# Palette entries an 8-bit label map can index.
PALETTE_SIZE = MAX_PIXEL_VALUE + 1
DATASET_PALETTES = {
    "cityscapes": np.asarray(CITYSCAPES_PALETTE, dtype=np.uint8),
    "voc": voc_colormap(len(VOC_CLASS_NAMES)),
}
DATASET_CLASS_NAMES = {
    "cityscapes": tuple(CITYSCAPES_CLASS_NAMES),
    "voc": tuple(VOC_CLASS_NAMES),
}
LEGEND_SWATCH_SIZE = 16
LEGEND_ROW_HEIGHT = 20
LEGEND_PADDING = 4
LEGEND_CHAR_WIDTH = 7
LEGEND_BACKGROUND = (255, 255, 255)
LEGEND_TEXT_COLOR = (0, 0, 0)
CITYSCAPES_SUBMISSION = "cityscapes-submission"
# Output format -> suffix of the written file (`<image stem><suffix>`).
FORMAT_SUFFIXES = {
    "overlay": "_overlay.png",
    "color": "_color.png",
    "labels": "_labels.png",
}
OUTPUT_FORMATS = (*FORMAT_SUFFIXES, CITYSCAPES_SUBMISSION)
DEFAULT_OUTPUT_FORMAT = "overlay"
# Formats whose colours need a legend next to them.
LEGEND_FORMATS = ("overlay", "color")
LEGEND_FILE = "legend.png"
# Example sheets: image | ground truth | prediction, enlarged, with titles.
PANEL_SCALE = 4
PANEL_GAP = 4
PANEL_GAP_COLOR = 255
PANEL_TITLES = ("image", "ground truth", "prediction")
TITLE_HEIGHT = 16
TITLE_MARGIN = 3
TITLE_COLOR = LEGEND_TEXT_COLOR


def default_palette(num_classes):
    """The PASCAL VOC colour map, cut to `num_classes` entries.

    Args:
        num_classes: number of classes (at most 256).

    Returns:
        `uint8` array of shape `(num_classes, 3)`.

    Example:

    >>> default_palette(3).tolist()
    [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    """
    if not 0 < num_classes <= PALETTE_SIZE:
        raise ValueError(
            "`num_classes` must be in [1, 256]. "
            f"Received: num_classes={num_classes!r}"
        )
    return voc_colormap(num_classes)


def _as_palette(palette):
    palette = np.asarray(palette)
    if palette.ndim != 2 or palette.shape[1] != RGB_CHANNELS:
        raise ValueError(
            "`palette` must have shape (num_classes, 3). "
            f"Received: palette.shape={palette.shape}"
        )
    if palette.size and (palette.min() < 0 or palette.max() > MAX_PIXEL_VALUE):
        raise ValueError(
            "`palette` colours must be in [0, 255]. "
            f"Received: palette with values in "
            f"[{palette.min()}, {palette.max()}]"
        )
    return palette.astype(np.uint8)


def preset_palette(name_or_dir, num_classes=None):
    """Colour palette and class names of a preset.

    Uses the preset metadata (`palette`, `class_names`), then the dataset it
    names (`"cityscapes"`, `"voc"`), then the VOC colour map with numbered
    class names (`num_classes` entries, required in that case).

    Args:
        name_or_dir: a built-in preset name or a preset directory.
        num_classes: number of classes when the preset does not say.

    Returns:
        `(palette, class_names)`: `uint8 (num_classes, 3)` and a tuple.

    Example:

    >>> palette, names = preset_palette("refinenet101_cityscapes")
    >>> names[0], palette[0].tolist()
    ('road', [128, 64, 128])
    """
    from keras_refinenet.models.preset_io import preset_metadata

    return palette_from_metadata(preset_metadata(name_or_dir), num_classes)


def palette_from_metadata(metadata, num_classes=None):
    """`(palette, class_names)` from preset metadata; see `preset_palette`.

    Args:
        metadata: a preset's metadata dictionary.
        num_classes: number of classes when the metadata does not say.

    Returns:
        `(palette, class_names)`.

    Example:

    >>> palette, names = palette_from_metadata({"dataset": "voc"})
    >>> len(names), palette.shape
    (21, (21, 3))
    """
    metadata = metadata or {}
    dataset = metadata.get("dataset")
    class_names = metadata.get("class_names")
    palette = metadata.get("palette")
    if class_names is None and dataset in DATASET_CLASS_NAMES:
        class_names = DATASET_CLASS_NAMES[dataset]
    if palette is None and dataset in DATASET_PALETTES:
        palette = DATASET_PALETTES[dataset]
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    if num_classes is None and palette is not None:
        num_classes = len(palette)
    if num_classes is None:
        raise ValueError(
            "The preset metadata names no classes; pass `num_classes`. "
            f"Received: num_classes={num_classes!r}"
        )
    if class_names is None:
        class_names = default_class_names(num_classes)
    if palette is None or len(palette) < num_classes:
        palette = default_palette(num_classes)
    return _as_palette(palette)[:num_classes], tuple(class_names)


def _check_label_map(label_map, num_colors, ignore_label):
    label_map = np.asarray(label_map)
    if not np.issubdtype(label_map.dtype, np.integer):
        raise ValueError(
            "`label_map` must hold integer class ids. "
            f"Received: label_map.dtype={label_map.dtype}"
        )
    valid = label_map != ignore_label if ignore_label is not None else True
    out_of_range = ((label_map < 0) | (label_map >= num_colors)) & valid
    if np.any(out_of_range):
        bad = np.unique(label_map[out_of_range])[:5].tolist()
        raise ValueError(
            f"`label_map` holds ids without a palette colour (the palette "
            f"has {num_colors}; ignore label {ignore_label}). "
            f"Received: label_map ids {bad}"
        )
    return label_map


def colorize(
    label_map,
    palette=None,
    ignore_label=IGNORE_LABEL,
    ignore_color=IGNORE_COLOR,
):
    """Maps class ids to RGB colours.

    Args:
        label_map: integer array `(..., height, width)` of class ids.
        palette: `(num_classes, 3)` colours; default: the VOC colour map
            with 256 entries.
        ignore_label: id drawn in `ignore_color` (`None`: no such id).
        ignore_color: RGB colour of `ignore_label`.

    Returns:
        `uint8` array `(..., height, width, 3)`.

    Example:

    >>> import numpy as np
    >>> colorize(np.array([[0, 1]]), palette=[[0, 0, 0], [9, 8, 7]]).tolist()
    [[[0, 0, 0], [9, 8, 7]]]
    """
    if palette is None:
        palette = voc_colormap(PALETTE_SIZE)
    palette = _as_palette(palette)
    label_map = _check_label_map(label_map, len(palette), ignore_label)
    lookup = np.zeros((max(len(palette), PALETTE_SIZE), RGB_CHANNELS), np.uint8)
    lookup[: len(palette)] = palette
    indices = label_map.astype(np.int64)
    if ignore_label is not None:
        ignored = label_map == ignore_label
        if ignore_label >= len(lookup) or ignore_label < 0:
            indices = np.where(ignored, 0, indices)
        colors = lookup[indices]
        colors[ignored] = np.asarray(ignore_color, np.uint8)
        return colors
    return lookup[indices]


def _as_rgb_uint8(image):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != RGB_CHANNELS:
        raise ValueError(
            "`image` must be an RGB image (height, width, 3). "
            f"Received: image.shape={image.shape}"
        )
    if image.dtype == np.uint8:
        return image
    if (
        not np.all(np.isfinite(image))
        or image.min() < 0
        or image.max() > MAX_PIXEL_VALUE
    ):
        raise ValueError(
            "Float `image` values must be finite and in [0, 255]. "
            f"Received: image with values in [{image.min()}, {image.max()}]"
        )
    return np.round(image).astype(np.uint8)


def overlay(
    image,
    label_map,
    alpha=DEFAULT_ALPHA,
    palette=None,
    ignore_label=IGNORE_LABEL,
):
    """Blends the colourized `label_map` over `image`.

    Pixels with `ignore_label` keep the image colour.

    Args:
        image: RGB image `(height, width, 3)`, uint8 or float 0..255.
        label_map: integer class ids `(height, width)`.
        alpha: weight of the label colours, in [0, 1].
        palette: see `colorize`.
        ignore_label: id left uncoloured (`None`: none).

    Returns:
        `uint8` RGB image `(height, width, 3)`.

    Example:

    >>> import numpy as np
    >>> image = np.full((1, 1, 3), 100, np.uint8)
    >>> overlay(image, np.array([[1]]), 0.5, [[0, 0, 0], [200, 0, 0]]).tolist()
    [[[150, 50, 50]]]
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"`alpha` must be in [0, 1]. Received: alpha={alpha}")
    image = _as_rgb_uint8(image)
    label_map = np.asarray(label_map)
    if label_map.shape != image.shape[:2]:
        raise ValueError(
            "`label_map` must have the image's height and width. "
            f"Received: label_map.shape={label_map.shape}, "
            f"image.shape={image.shape}"
        )
    colors = colorize(label_map, palette, ignore_label=ignore_label)
    blended = (1.0 - alpha) * image + alpha * colors.astype(np.float32)
    if ignore_label is not None:
        blended[label_map == ignore_label] = image[label_map == ignore_label]
    return np.round(blended).astype(np.uint8)


def legend(class_names, palette=None):
    """An image listing each class name next to its colour swatch.

    Args:
        class_names: sequence of class names.
        palette: `(len(class_names), 3)` colours; default: the VOC map.

    Returns:
        `uint8` RGB image, one row of `LEGEND_ROW_HEIGHT` pixels per class.

    Example:

    >>> image = legend(["road", "car"], [[128, 64, 128], [0, 0, 142]])
    >>> image.shape[0], image[8, 10].tolist()
    (40, [128, 64, 128])
    """
    from PIL import Image, ImageDraw

    class_names = [str(name) for name in class_names]
    if not class_names:
        raise ValueError(
            f"`class_names` must not be empty. Received: {class_names!r}"
        )
    if palette is None:
        palette = default_palette(len(class_names))
    palette = _as_palette(palette)
    if len(palette) < len(class_names):
        raise ValueError(
            "`palette` needs a colour for every class name. Received: "
            f"{len(palette)} colours for {len(class_names)} class names"
        )
    text_x = 2 * LEGEND_PADDING + LEGEND_SWATCH_SIZE
    width = (
        text_x
        + LEGEND_PADDING
        + LEGEND_CHAR_WIDTH * max(len(name) for name in class_names)
    )
    height = LEGEND_ROW_HEIGHT * len(class_names)
    image = Image.new("RGB", (width, height), LEGEND_BACKGROUND)
    draw = ImageDraw.Draw(image)
    swatch_top = (LEGEND_ROW_HEIGHT - LEGEND_SWATCH_SIZE) // 2
    for row, name in enumerate(class_names):
        top = row * LEGEND_ROW_HEIGHT + swatch_top
        draw.rectangle(
            [
                LEGEND_PADDING,
                top,
                LEGEND_PADDING + LEGEND_SWATCH_SIZE - 1,
                top + LEGEND_SWATCH_SIZE - 1,
            ],
            fill=tuple(int(c) for c in palette[row]),
        )
        draw.text((text_x, top + 2), name, fill=LEGEND_TEXT_COLOR)
    return np.asarray(image)


def side_by_side(image, ground_truth, prediction, palette):
    """`image | ground truth | prediction overlay`, enlarged, as uint8.

    Each panel is enlarged `PANEL_SCALE` times (nearest neighbour) and
    separated from the next by `PANEL_GAP` white columns.

    Args:
        image: `(H, W, 3)` RGB image.
        ground_truth: `(H, W)` class ids (255 ignored).
        prediction: `(H, W)` predicted class ids.
        palette: one RGB colour per class.

    Returns:
        `uint8 (H * 4, W * 12 + gaps, 3)` array.

    Example:

    >>> panel = side_by_side(np.zeros((2, 3, 3)), np.zeros((2, 3), int),
    ...                      np.zeros((2, 3), int), [(0, 0, 0)])
    >>> panel.shape
    (8, 44, 3)
    """
    image = np.clip(np.asarray(image), 0, MAX_PIXEL_VALUE).astype(np.uint8)
    panels = [
        image,
        colorize(np.asarray(ground_truth), palette=palette),
        overlay(image, np.asarray(prediction), palette=palette),
    ]
    height = image.shape[0] * PANEL_SCALE
    gap = np.full((height, PANEL_GAP, RGB_CHANNELS), PANEL_GAP_COLOR, np.uint8)
    row = []
    for panel in panels:
        enlarged = np.repeat(
            np.repeat(panel, PANEL_SCALE, axis=0), PANEL_SCALE, axis=1
        )
        row.extend([enlarged, gap])
    return np.concatenate(row[:-1], axis=1)


def example_sheet(image, ground_truth, prediction, palette, class_names):
    """`side_by_side` with a title over each panel (image, ground truth,
    prediction) and the class legend on the right.

    Args:
        image: `(H, W, 3)` RGB image.
        ground_truth: `(H, W)` class ids (255 ignored).
        prediction: `(H, W)` predicted class ids.
        palette: one RGB colour per class.
        class_names: one name per class.

    Returns:
        `uint8` RGB array.

    Example:

    >>> sheet = example_sheet(np.zeros((8, 8, 3)), np.zeros((8, 8), int),
    ...                       np.zeros((8, 8), int), [(0, 0, 0)], ["bg"])
    >>> sheet.shape[0] == 8 * PANEL_SCALE + TITLE_HEIGHT
    True
    """
    from PIL import Image, ImageDraw

    panels = side_by_side(image, ground_truth, prediction, palette)
    key = legend(class_names, palette)
    height = max(panels.shape[0], key.shape[0]) + TITLE_HEIGHT
    width = panels.shape[1] + PANEL_GAP + key.shape[1]
    sheet = Image.new("RGB", (width, height), (PANEL_GAP_COLOR,) * RGB_CHANNELS)
    sheet.paste(Image.fromarray(panels), (0, TITLE_HEIGHT))
    sheet.paste(
        Image.fromarray(key), (panels.shape[1] + PANEL_GAP, TITLE_HEIGHT)
    )
    draw = ImageDraw.Draw(sheet)
    panel_width = np.asarray(image).shape[1] * PANEL_SCALE
    for index, title in enumerate(PANEL_TITLES):
        left = index * (panel_width + PANEL_GAP) + TITLE_MARGIN
        draw.text((left, TITLE_MARGIN), title, fill=TITLE_COLOR)
    return np.asarray(sheet)


def write_png(array, path):
    """Writes a uint8 RGB `(h, w, 3)` or single-channel `(h, w)` PNG.

    Args:
        array: `uint8` array (integer arrays with values 0..255 are
            accepted).
        path: file to write; parent folders are created.

    Returns:
        The path as a `pathlib.Path`.

    Example:

    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ids.png")
    >>> write_png(np.zeros((2, 2), np.uint8), path).suffix
    '.png'
    """
    from PIL import Image

    array = np.asarray(array)
    if array.ndim not in (2, 3) or (
        array.ndim == 3 and array.shape[-1] != RGB_CHANNELS
    ):
        raise ValueError(
            "`array` must be (height, width) or (height, width, 3). "
            f"Received: array.shape={array.shape}"
        )
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.integer) or (
            array.size and (array.min() < 0 or array.max() > MAX_PIXEL_VALUE)
        ):
            raise ValueError(
                "`array` must be uint8 or integers in [0, 255]. "
                f"Received: array.dtype={array.dtype}"
            )
        array = array.astype(np.uint8)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG")
    return path


def _check_format(fmt):
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(
            f"`fmt` must be one of {OUTPUT_FORMATS}. Received: fmt={fmt!r}"
        )


def output_name(path, fmt):
    """File name of the prediction for the image `path` in format `fmt`.

    `cityscapes-submission` names files `<city>_<seq>_<frame>` +
    `_leftImg8bit.png`, as the benchmark scripts and server expect.

    Args:
        path: the input image path.
        fmt: one of `OUTPUT_FORMATS`.

    Returns:
        The file name.

    Example:

    >>> output_name("a/berlin_000123_000019_leftImg8bit.png",
    ...             "cityscapes-submission")
    'berlin_000123_000019_leftImg8bit.png'
    >>> output_name("photos/cat.jpg", "overlay")
    'cat_overlay.png'
    """
    _check_format(fmt)
    path = pathlib.Path(path)
    if fmt != CITYSCAPES_SUBMISSION:
        return path.stem + FORMAT_SUFFIXES[fmt]
    match = CITYSCAPES_FRAME_ID_PATTERN.search(path.name)
    if match is None:
        raise ValueError(
            f"{CITYSCAPES_SUBMISSION} needs Cityscapes file names "
            "containing <city>_<seq>_<frame> (e.g. "
            f"berlin_000000_000019{CITYSCAPES_IMAGE_SUFFIX}). "
            f"Received: image={str(path)!r}"
        )
    return match.group(1) + CITYSCAPES_IMAGE_SUFFIX


def output_names(paths, fmt):
    """`{output file name: image path}`; two images may not share a name.

    Example:

    >>> output_names(["a/x.png", "b/y.png"], "labels")
    {'x_labels.png': 'a/x.png', 'y_labels.png': 'b/y.png'}
    """
    names = {}
    for path in paths:
        name = output_name(path, fmt)
        if name in names:
            raise ValueError(
                f"Two images would both be written as {name!r}. Received: "
                f"images {str(names[name])!r} and {str(path)!r}"
            )
        names[name] = path
    return names


def check_output_format(fmt, num_classes):
    """Checks that a model of `num_classes` classes can write `fmt`.

    Example:

    >>> check_output_format("cityscapes-submission", 19)
    >>> check_output_format("cityscapes-submission", 21)
    Traceback (most recent call last):
    ...
    ValueError: cityscapes-submission needs a model ... num_classes=21
    """
    _check_format(fmt)
    if fmt == CITYSCAPES_SUBMISSION and num_classes != CITYSCAPES_NUM_CLASSES:
        raise ValueError(
            f"{CITYSCAPES_SUBMISSION} needs a model of the "
            f"{CITYSCAPES_NUM_CLASSES} Cityscapes train classes. "
            f"Received: num_classes={num_classes}"
        )


def render_prediction(image, class_ids, fmt, palette=None, alpha=DEFAULT_ALPHA):
    """The picture of a prediction in an output format, as uint8.

    - `overlay`: the colours blended over the image (`alpha`);
    - `color`: the colour label map;
    - `labels`: the class ids (single channel);
    - `cityscapes-submission`: Cityscapes label ids (train ids mapped
      back to the 34 ids).

    Args:
        image: the input image, `(h, w)` grey, `(h, w, 3)` RGB or
            `(h, w, 4)` RGBA (only its RGB channels are drawn).
        class_ids: `(h, w)` predicted class ids.
        fmt: one of `OUTPUT_FORMATS`.
        palette: `(num_classes, 3)` colours (see `colorize`).
        alpha: overlay weight of the colours.

    Returns:
        `uint8` array for `write_png`.

    Example:

    >>> import numpy as np
    >>> ids = np.array([[0, 13]])
    >>> render_prediction(np.zeros((1, 2), np.uint8), ids,
    ...                   "cityscapes-submission").tolist()
    [[7, 26]]
    """
    _check_format(fmt)
    class_ids = np.asarray(class_ids)
    if fmt == "overlay":
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.stack([image] * RGB_CHANNELS, axis=-1)
        return overlay(image[..., :RGB_CHANNELS], class_ids, alpha, palette)
    if fmt == "color":
        return colorize(class_ids, palette)
    if fmt == "labels":
        return class_ids.astype(np.uint8)
    return train_ids_to_label_ids(class_ids).astype(np.uint8)
