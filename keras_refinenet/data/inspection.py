"""The data checker behind `keras-refinenet inspect-data`.

`inspect_dataset(root, num_classes)` reads every image header and every
mask of a folder dataset (`root/<split>/{images,masks}` or
`root/{images,masks}`), a PASCAL VOC folder (`JPEGImages/`,
`SegmentationClass/`) or a Cityscapes folder (`leftImg8bit/`, `gtFine/`)
and reports what would make training fail or go wrong:

- images without masks and masks without images (errors; for VOC, images
  without masks are normal and only counted);
- unreadable files, image / mask size mismatches (errors; a mismatch that
  an EXIF rotation explains is said so);
- RGB masks where class ids are expected (errors), with the palette they
  look like (VOC, Cityscapes, synthetic); palette PNGs (read as palette
  indices, which is right for VOC-style masks);
- values outside `0..num_classes-1` other than 255 (errors);
- off-by-one labelling: classes `1..N` with `0` unused (an error when `N`
  is out of range, else a warning);
- empty masks: only ignored pixels, or only class 0 (warnings);
- per-class pixel frequencies, suggested class weights (median frequency
  and inverse frequency), the image-size distribution with a suggested
  crop / tile size;
- optionally a PNG sheet of augmented (image, mask) pairs as training sees
  them (`write_augmented_sheet`).

The report's `ok` is false when training would fail.
"""

import collections
import dataclasses
import pathlib

import numpy as np
from PIL import Image

from keras_refinenet.constants import IGNORE_LABEL
from keras_refinenet.data import folder
from keras_refinenet.data.cityscapes import (
    CITYSCAPES_IMAGE_SUFFIX,
    CITYSCAPES_LABEL_ID_SUFFIX,
    CITYSCAPES_TRAIN_ID_SUFFIX,
)

AUTO_LAYOUT = "auto"
LAYOUTS = (AUTO_LAYOUT, "folder", "voc", "cityscapes")
ERROR = "error"
WARNING = "warning"
INFO = "info"
LEVELS = (ERROR, WARNING, INFO)
VALUE_RANGE = 256
MAX_LISTED = 5
RGB_MODES = ("RGB", "RGBA")
CROP_MULTIPLE = 32
MAX_SUGGESTED_CROP = 512
PALETTE_MATCH_FRACTION = 0.9
MAX_SAMPLED_COLORS = 4096
DEFAULT_SHEET_PAIRS = 6
DEFAULT_SHEET_SEED = 0
SHEET_GAP = 4
SHEET_GAP_VALUE = 255
CITYSCAPES_IMAGE_DIR = "leftImg8bit"
CITYSCAPES_MASK_DIR = "gtFine"


@dataclasses.dataclass
class Finding:
    """One problem or observation.

    Attributes:
        level: `"error"` (training would fail), `"warning"` or `"info"`.
        check: short name of the check (`"size_mismatch"`, ...).
        message: what is wrong and how to fix it.
        files: up to `MAX_LISTED` example files.
        count: how many files (or classes) the finding is about.
    """

    level: str
    check: str
    message: str
    files: list = dataclasses.field(default_factory=list)
    count: int = 0


@dataclasses.dataclass
class SplitSource:
    """Where the images and masks of one split are."""

    name: str
    images: dict
    masks: dict
    mask_kind: str = "ids"
    images_without_masks_ok: bool = False


@dataclasses.dataclass
class InspectionReport:
    """What `inspect_dataset` found (see the module docstring).

    Attributes:
        root: the inspected folder.
        layout: `"folder"`, `"voc"` or `"cityscapes"`.
        num_classes: the expected number of classes.
        splits: per split, `{"images": n, "masks": n, "pairs": n}`.
        findings: list of `Finding`.
        pixel_counts: per class, labelled pixels over all masks.
        ignored_pixels: pixels labelled 255.
        class_weights: `{"median": [...], "inverse": [...]}`.
        image_sizes: `{(height, width): count}` of the readable images.
        suggested_crop: `(height, width)` suggested crop / tile size.
        pairs: the readable, consistent `(image, mask)` path pairs.
    """

    root: str
    layout: str
    num_classes: int
    splits: dict
    findings: list
    pixel_counts: list
    ignored_pixels: int
    class_weights: dict
    image_sizes: dict
    suggested_crop: tuple | None
    pairs: list

    @property
    def errors(self):
        return [f for f in self.findings if f.level == ERROR]

    @property
    def ok(self):
        """Whether training on this dataset would run."""
        return not self.errors

    def to_dict(self):
        """A JSON-ready dict of the report."""
        return {
            "root": self.root,
            "layout": self.layout,
            "num_classes": self.num_classes,
            "ok": self.ok,
            "splits": self.splits,
            "findings": [dataclasses.asdict(f) for f in self.findings],
            "pixel_counts": self.pixel_counts,
            "ignored_pixels": self.ignored_pixels,
            "class_weights": self.class_weights,
            "image_sizes": {
                f"{h}x{w}": count for (h, w), count in self.image_sizes.items()
            },
            "suggested_crop": list(self.suggested_crop or ()),
        }

    def format(self):
        """The report as plain text."""
        lines = [f"dataset: {self.root} ({self.layout} layout)"]
        for name, counts in self.splits.items():
            lines.append(
                f"  {name}: {counts['images']} images, {counts['masks']} "
                f"masks, {counts['pairs']} usable pairs"
            )
        total = sum(self.pixel_counts)
        if total:
            lines.append("class pixel frequencies and suggested weights:")
            lines.append(
                f"  {'class':>5}  {'pixels':>12}  {'share':>7}  "
                f"{'median':>7}  {'inverse':>7}"
            )
            for index, count in enumerate(self.pixel_counts):
                lines.append(
                    f"  {index:>5}  {count:>12}  {count / total:>7.2%}  "
                    f"{self.class_weights['median'][index]:>7.3f}  "
                    f"{self.class_weights['inverse'][index]:>7.3f}"
                )
            lines.append(f"  ignored (255): {self.ignored_pixels} pixels")
            weights = ",".join(f"{w:.3g}" for w in self.class_weights["median"])
            lines.append(f"  --class-weights {weights}  (or: auto)")
        if self.image_sizes:
            heights = _expand(self.image_sizes, 0)
            widths = _expand(self.image_sizes, 1)
            lines.append(
                f"image sizes ({len(self.image_sizes)} distinct): height "
                f"{min(heights)}..{max(heights)} (median "
                f"{int(np.median(heights))}), width {min(widths)}.."
                f"{max(widths)} (median {int(np.median(widths))})"
            )
            if self.suggested_crop:
                height, width = self.suggested_crop
                lines.append(
                    f"  suggested --crop-size {height} {width} (and tile "
                    "size for large images)"
                )
        for level in LEVELS:
            for finding in self.findings:
                if finding.level != level:
                    continue
                lines.append(f"{level}: {finding.message}")
                lines.extend(f"    {path}" for path in finding.files)
        errors = len(self.errors)
        lines.append(
            "ok: training can start"
            if self.ok
            else f"not ok: {errors} error(s) would stop training"
        )
        return "\n".join(lines)


def _expand(sizes, axis):
    return [size[axis] for size, count in sizes.items() for _ in range(count)]


def _files(folder_path, extensions, suffix=None):
    """`{stem: path}` of the files in a folder (recursively for suffixes)."""
    folder_path = pathlib.Path(folder_path)
    if suffix is not None:
        return {
            path.name[: -len(suffix)]: path
            for path in sorted(folder_path.rglob(f"*{suffix}"))
        }
    return {
        path.stem: path
        for path in sorted(folder_path.iterdir())
        if path.is_file() and path.suffix.lower() in extensions
    }


def detect_layout(root):
    """`"voc"`, `"cityscapes"` or `"folder"` from the folders under root.

    Example:

    >>> detect_layout("/nonexistent")  # doctest: +SKIP
    """
    root = pathlib.Path(root)
    if (root / folder.VOC_IMAGE_DIR).is_dir():
        return "voc"
    if (root / CITYSCAPES_IMAGE_DIR).is_dir():
        return "cityscapes"
    return "folder"


def _folder_sources(root):
    image_dir, mask_dir = "images", "masks"
    if (root / image_dir).is_dir() or (root / mask_dir).is_dir():
        candidates = [("all", root)]
    else:
        candidates = [
            (path.name, path)
            for path in sorted(root.iterdir())
            if path.is_dir()
            and ((path / image_dir).is_dir() or (path / mask_dir).is_dir())
        ]
    if not candidates:
        raise ValueError(
            f"No dataset found: expected {root}/<split>/{image_dir} and "
            f"{root}/<split>/{mask_dir} (or {image_dir}/ and {mask_dir}/ "
            f"directly, a VOC folder with {folder.VOC_IMAGE_DIR}/ or a "
            f"Cityscapes folder with {CITYSCAPES_IMAGE_DIR}/). "
            f"Received: root={str(root)!r}"
        )
    sources = []
    for name, split_dir in candidates:
        images = (
            _files(split_dir / image_dir, folder.IMAGE_EXTENSIONS)
            if (split_dir / image_dir).is_dir()
            else {}
        )
        masks = (
            _files(split_dir / mask_dir, (folder.MASK_EXTENSION,))
            if (split_dir / mask_dir).is_dir()
            else {}
        )
        sources.append(SplitSource(name, images, masks))
    return sources


def _voc_sources(root):
    images = _files(root / folder.VOC_IMAGE_DIR, folder.IMAGE_EXTENSIONS)
    mask_dir = root / folder.VOC_MASK_DIR
    masks = (
        _files(mask_dir, (folder.MASK_EXTENSION,)) if mask_dir.is_dir() else {}
    )
    split_dir = root / folder.VOC_SPLIT_DIR
    split_files = sorted(split_dir.glob("*.txt")) if split_dir.is_dir() else []
    if not split_files:
        return [SplitSource("all", images, masks, images_without_masks_ok=True)]
    sources = []
    for split_file in split_files:
        stems = folder.read_split_file(split_file)
        sources.append(
            SplitSource(
                split_file.stem,
                {s: images.get(s) for s in stems if s in images},
                {s: masks.get(s) for s in stems if s in masks},
            )
        )
        missing = [s for s in stems if s not in images and s not in masks]
        if missing:
            sources[-1].images.update({s: None for s in missing})
    return sources


def _cityscapes_sources(root):
    sources = []
    image_root = root / CITYSCAPES_IMAGE_DIR
    for split_dir in sorted(p for p in image_root.iterdir() if p.is_dir()):
        images = _files(split_dir, None, CITYSCAPES_IMAGE_SUFFIX)
        mask_split = root / CITYSCAPES_MASK_DIR / split_dir.name
        masks, kind = {}, "ids"
        if mask_split.is_dir():
            masks = _files(mask_split, None, CITYSCAPES_TRAIN_ID_SUFFIX)
            if not masks:
                masks = _files(mask_split, None, CITYSCAPES_LABEL_ID_SUFFIX)
                kind = "cityscapes_label_ids"
        sources.append(SplitSource(split_dir.name, images, masks, kind))
    return sources


def _known_palettes():
    from keras_refinenet.data import cityscapes, synthetic, voc

    return {
        "PASCAL VOC": voc.VOC_PALETTE[:21],
        "Cityscapes": tuple(
            tuple(label.color) for label in cityscapes.CITYSCAPES_LABELS
        ),
        "synthetic shapes": synthetic.SYNTHETIC_PALETTE,
    }


def guess_palette(colors):
    """The known palette (VOC, Cityscapes, synthetic) that holds most of
    `colors`, or `None`.

    Args:
        colors: `(N, 3)` distinct RGB colours of a mask (black and white
            are ignored, being in every palette or none).

    Returns:
        The palette name or `None`.

    Example:

    >>> guess_palette([(128, 0, 0), (0, 128, 0), (0, 0, 0)])
    'PASCAL VOC'
    """
    colors = {tuple(int(c) for c in color) for color in colors}
    colors -= {(0, 0, 0), (255, 255, 255)}
    if not colors:
        return None
    best, best_fraction = None, 0.0
    for name, palette in _known_palettes().items():
        known = {tuple(color) for color in palette}
        fraction = len(colors & known) / len(colors)
        if fraction > best_fraction:
            best, best_fraction = name, fraction
    return best if best_fraction >= PALETTE_MATCH_FRACTION else None


def _mask_colors(array):
    flat = array.reshape(-1, array.shape[-1])[:, :3]
    colors = np.unique(flat, axis=0)
    return colors[:MAX_SAMPLED_COLORS]


def suggest_crop_size(image_sizes):
    """A training crop (and inference tile) size for a size distribution:
    the median height and width, at most 512, rounded down to a multiple of
    32 (at least 32).

    Args:
        image_sizes: `{(height, width): count}`.

    Returns:
        `(height, width)` or `None` without images.

    Example:

    >>> suggest_crop_size({(375, 500): 3, (1024, 2048): 1})
    (352, 480)
    """
    if not image_sizes:
        return None
    suggestion = []
    for axis in (0, 1):
        median = float(np.median(_expand(image_sizes, axis)))
        side = min(median, MAX_SUGGESTED_CROP)
        suggestion.append(max(int(side) // CROP_MULTIPLE, 1) * CROP_MULTIPLE)
    return tuple(suggestion)


class _Findings:
    """Collects files per check and turns them into `Finding`s."""

    def __init__(self):
        self.files = collections.defaultdict(list)
        self.messages = {}
        self.levels = {}
        self.order = []

    def add(self, level, check, message, path=None):
        if check not in self.messages:
            self.order.append(check)
            self.messages[check] = message
            self.levels[check] = level
        if path is not None:
            self.files[check].append(str(path))

    def findings(self):
        result = []
        for check in self.order:
            files = self.files[check]
            message = self.messages[check]
            if files:
                message = f"{message} ({len(files)} file(s))"
            result.append(
                Finding(
                    self.levels[check],
                    check,
                    message,
                    files[:MAX_LISTED],
                    len(files),
                )
            )
        return result


def _read_mask_values(path, kind, found):
    """`(values (H, W) uint8 or None, mode)` of a mask, recording problems."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            array = np.asarray(image)
    except (OSError, SyntaxError, ValueError):
        found.add(ERROR, "unreadable_mask", "unreadable masks", path)
        return None, None
    if mode in RGB_MODES:
        colors = _mask_colors(array)
        grey = np.all(colors[:, :1] == colors, axis=1).all()
        if grey:
            found.add(
                ERROR,
                "rgb_grey_mask",
                "masks are RGB with equal channels: save them as "
                "single-channel (mode L) PNGs of class ids",
                path,
            )
            return array[..., 0].astype(np.uint8), mode
        palette = guess_palette(colors)
        hint = (
            f"their colours look like the {palette} palette: convert the "
            "colours to class ids (one id per colour)"
            if palette
            else "convert each colour to its class id"
        )
        found.add(
            ERROR,
            f"rgb_mask_{palette or 'unknown'}",
            f"masks are RGB colour images, class ids expected; {hint}",
            path,
        )
        return None, mode
    if mode not in folder.SINGLE_CHANNEL_MODES:
        found.add(
            ERROR,
            "mask_mode",
            "masks must be single-channel or palette PNGs of class ids "
            f"(mode {mode!r})",
            path,
        )
        return None, mode
    if array.max(initial=0) > IGNORE_LABEL:
        found.add(
            ERROR,
            "mask_over_255",
            f"mask values above {IGNORE_LABEL} (16-bit masks must hold "
            "class ids)",
            path,
        )
        return None, mode
    values = array.astype(np.uint8)
    if kind == "cityscapes_label_ids":
        from keras_refinenet.data.cityscapes import label_ids_to_train_ids

        values = np.asarray(label_ids_to_train_ids(values), np.uint8)
    if mode == "P":
        with Image.open(path) as image:
            raw = image.getpalette() or []
        colors = np.array(raw[: 3 * VALUE_RANGE]).reshape(-1, 3)
        indices = np.unique(values)
        indices = indices[(indices < len(colors)) & (indices != IGNORE_LABEL)]
        used = colors[indices]
        palette = guess_palette(used)
        found.add(
            INFO,
            "palette_mask",
            "palette PNG masks are read as palette indices (class ids)"
            + (f"; their palette looks like {palette}" if palette else ""),
            path,
        )
    return values, mode


def _check_image(path, found):
    """`(height, width)` of an image after EXIF orientation, or `None`."""
    try:
        width, height = folder.image_size(path)
        with Image.open(path) as image:
            mode = image.mode
    except ValueError:
        found.add(ERROR, "unreadable_image", "unreadable images", path)
        return None
    if mode == "F":
        found.add(
            ERROR,
            "float_image",
            "floating-point images are refused; save them as 8 or 16 bit",
            path,
        )
        return None
    if mode in folder.SIXTEEN_BIT_MODES:
        found.add(
            INFO,
            "sixteen_bit_image",
            "16-bit images are scaled from 0..65535 to 0..255",
            path,
        )
    elif mode == "CMYK":
        found.add(INFO, "cmyk_image", "CMYK images are converted to RGB", path)
    return height, width


def inspect_dataset(root, num_classes, layout=AUTO_LAYOUT):
    """Checks a dataset folder before training (see the module docstring).

    Args:
        root: dataset folder.
        num_classes: number of classes training will use.
        layout: `"auto"`, `"folder"`, `"voc"` or `"cityscapes"`.

    Returns:
        An `InspectionReport`.

    Example:

    >>> report = inspect_dataset("my_data", num_classes=4)  # doctest: +SKIP
    >>> print(report.format())  # doctest: +SKIP
    """
    from keras_refinenet.training.losses import class_weights_from_counts

    root = pathlib.Path(root)
    if layout not in LAYOUTS:
        raise ValueError(
            f"`layout` must be one of {LAYOUTS}. Received: layout={layout!r}"
        )
    if not root.is_dir():
        raise ValueError(
            f"The dataset folder does not exist. Received: root={str(root)!r}"
        )
    if int(num_classes) < 1 or int(num_classes) > IGNORE_LABEL:
        raise ValueError(
            f"`num_classes` must be in 1..{IGNORE_LABEL}. "
            f"Received: num_classes={num_classes}"
        )
    if layout == AUTO_LAYOUT:
        layout = detect_layout(root)
    sources = {
        "folder": _folder_sources,
        "voc": _voc_sources,
        "cityscapes": _cityscapes_sources,
    }[layout](root)

    found = _Findings()
    value_counts = np.zeros(VALUE_RANGE, np.int64)
    image_pixels_per_value = np.zeros(VALUE_RANGE, np.int64)
    image_sizes = collections.Counter()
    splits, pairs = {}, []
    for source in sources:
        stems = sorted(set(source.images) | set(source.masks))
        usable = 0
        for stem in stems:
            image_path = source.images.get(stem)
            mask_path = source.masks.get(stem)
            if mask_path is None:
                if source.images_without_masks_ok:
                    continue
                found.add(
                    ERROR,
                    "image_without_mask",
                    "images without a mask of the same file stem",
                    image_path or f"{source.name}/{stem}",
                )
                continue
            if image_path is None:
                found.add(
                    ERROR,
                    "mask_without_image",
                    "masks without an image of the same file stem",
                    mask_path,
                )
                continue
            size = _check_image(image_path, found)
            values, _ = _read_mask_values(mask_path, source.mask_kind, found)
            if size is None or values is None:
                continue
            image_sizes[size] += 1
            if values.shape != size:
                rotated = values.shape == size[::-1]
                found.add(
                    ERROR,
                    "size_mismatch_exif" if rotated else "size_mismatch",
                    "masks whose size differs from their image"
                    + (
                        " by a 90-degree turn: the image's EXIF orientation "
                        "is applied when reading, the mask was drawn on the "
                        "unrotated pixels"
                        if rotated
                        else ""
                    ),
                    mask_path,
                )
                continue
            counts = np.bincount(values.ravel(), minlength=VALUE_RANGE)
            value_counts += counts
            image_pixels_per_value[counts > 0] += values.size
            present = np.flatnonzero(counts)
            bad = present[(present >= num_classes) & (present != IGNORE_LABEL)]
            if bad.size:
                found.add(
                    ERROR,
                    "values_out_of_range",
                    f"mask values outside 0..{num_classes - 1} (other than "
                    f"{IGNORE_LABEL}), e.g. {bad.tolist()[:MAX_LISTED]}",
                    mask_path,
                )
            valid = present[present != IGNORE_LABEL]
            if valid.size == 0:
                found.add(
                    WARNING,
                    "empty_mask",
                    f"masks with no labelled pixel (all {IGNORE_LABEL})",
                    mask_path,
                )
            elif valid.tolist() == [0]:
                found.add(
                    WARNING,
                    "background_only_mask",
                    "masks holding only class 0",
                    mask_path,
                )
            usable += 1
            pairs.append((str(image_path), str(mask_path)))
        splits[source.name] = {
            "images": sum(p is not None for p in source.images.values()),
            "masks": len(source.masks),
            "pairs": usable,
        }
        if source.images_without_masks_ok:
            extra = len(set(source.images) - set(source.masks))
            if extra:
                found.add(
                    INFO,
                    "unlabelled_images",
                    f"{extra} images have no mask (normal for VOC: they are "
                    "not used)",
                )
    _label_range_findings(value_counts, num_classes, found)
    pixel_counts = value_counts[:num_classes].tolist()
    image_counts = image_pixels_per_value[:num_classes].tolist()
    class_weights = {
        method: class_weights_from_counts(pixel_counts, image_counts, method)
        for method in ("median", "inverse")
    }
    absent = [c for c, count in enumerate(pixel_counts) if count == 0]
    if absent and sum(pixel_counts):
        found.add(
            WARNING,
            "absent_classes",
            f"classes never labelled: {absent[:20]}",
        )
    if not pairs and not found.levels:
        found.add(ERROR, "no_pairs", "no (image, mask) pairs found")
    return InspectionReport(
        root=str(root),
        layout=layout,
        num_classes=int(num_classes),
        splits=splits,
        findings=found.findings(),
        pixel_counts=pixel_counts,
        ignored_pixels=int(value_counts[IGNORE_LABEL]),
        class_weights=class_weights,
        image_sizes=dict(image_sizes),
        suggested_crop=suggest_crop_size(image_sizes),
        pairs=pairs,
    )


def _label_range_findings(value_counts, num_classes, found):
    present = np.flatnonzero(value_counts[:IGNORE_LABEL])
    if present.size == 0 or value_counts[0] > 0:
        return
    one_based = present.min() >= 1 and present.max() <= num_classes
    if one_based and present.max() == num_classes:
        found.add(
            ERROR,
            "off_by_one",
            f"labels look 1-based: classes 1..{num_classes} with 0 unused; "
            "subtract 1 from every mask value (map a 0 that means "
            f"'unlabelled' to {IGNORE_LABEL})",
        )
    elif one_based:
        found.add(
            WARNING,
            "class_zero_unused",
            "class 0 never appears: if your ids start at 1, subtract 1 "
            "(and use one class fewer)",
        )


def count_class_pixels(dataset, num_classes, ignore_label=IGNORE_LABEL):
    """Per-class pixel counts of the masks of an `(image, mask)` dataset.

    Args:
        dataset: `tf.data.Dataset` of `(image, mask)` examples.
        num_classes: number of classes; other values (and `ignore_label`)
            are not counted.
        ignore_label: the ignore value.

    Returns:
        `(pixel_counts, image_counts)`: per class, its labelled pixels and
        the total pixels of the masks where it appears (for median
        frequency balancing).

    Example:

    >>> import tensorflow as tf
    >>> masks = tf.constant([[[0, 1], [1, 255]]], tf.uint8)
    >>> images = tf.zeros((1, 2, 2, 3), tf.uint8)
    >>> dataset = tf.data.Dataset.from_tensor_slices((images, masks))
    >>> count_class_pixels(dataset, 2)
    ([1, 2], [4, 4])
    """
    pixel_counts = np.zeros(num_classes, np.int64)
    image_counts = np.zeros(num_classes, np.int64)
    for mask in dataset.map(lambda image, mask: mask).as_numpy_iterator():
        values = np.asarray(mask).ravel().astype(np.int64)
        counts = np.bincount(values, minlength=VALUE_RANGE)[:num_classes]
        if ignore_label < num_classes:
            counts[ignore_label] = 0
        pixel_counts += counts
        image_counts[counts > 0] += values.size
    return pixel_counts.tolist(), image_counts.tolist()


def write_augmented_sheet(
    pairs,
    path,
    num_classes,
    crop_size,
    count=DEFAULT_SHEET_PAIRS,
    seed=DEFAULT_SHEET_SEED,
    palette=None,
):
    """Writes a PNG of augmented `(image, mask)` pairs as training sees
    them (random scale, crop, flip, colour jitter; ignored pixels white).

    Args:
        pairs: `(image_path, mask_path)` pairs (`InspectionReport.pairs`).
        path: output PNG path.
        num_classes: number of classes (for the default palette).
        crop_size: `(height, width)` of the crops.
        count: number of pairs shown (one row each: image | mask).
        seed: augmentation seed.
        palette: class colours; default `default_palette(num_classes)`.

    Returns:
        The path written.
    """
    from keras_refinenet.data.pipeline import training_pipeline
    from keras_refinenet.inference.visualize import (
        colorize,
        default_palette,
        write_png,
    )

    if not pairs:
        raise ValueError(
            f"No usable (image, mask) pairs for the sheet. Received: "
            f"pairs={pairs!r}"
        )
    palette = palette or default_palette(num_classes)
    dataset = folder.pairs_dataset(pairs[: max(count * 4, count)])
    batches = training_pipeline(
        dataset, batch_size=1, crop_size=tuple(crop_size), seed=seed
    )
    rows = []
    height, width = crop_size
    gap = np.full((height, SHEET_GAP, 3), SHEET_GAP_VALUE, np.uint8)
    for images, masks in batches.repeat().take(count):
        image = np.clip(images.numpy()[0], 0, 255).astype(np.uint8)
        mask = np.asarray(masks.numpy()[0]).reshape(height, width)
        shown = np.where(
            (mask < num_classes) | (mask == IGNORE_LABEL), mask, IGNORE_LABEL
        )
        colors = colorize(shown, palette=palette)
        rows.append(np.concatenate([image, gap, colors], axis=1))
        rows.append(
            np.full(
                (SHEET_GAP, rows[-1].shape[1], 3), SHEET_GAP_VALUE, np.uint8
            )
        )
    write_png(np.concatenate(rows[:-1], axis=0), path)
    return pathlib.Path(path)
