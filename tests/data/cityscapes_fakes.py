"""Tiny fake Cityscapes zips in the official layout."""

import io
import zipfile

import numpy as np
from PIL import Image

IMAGES_ZIP = "leftImg8bit_trainvaltest.zip"
LABELS_ZIP = "gtFine_trainvaltest.zip"
FRAME_SHAPE = (1024, 2048)
FAKE_FRAMES = {
    "train": ("aachen_000000_000019", "bad-honnef_000001_000020"),
    "val": ("frankfurt_000000_000294",),
    "test": ("berlin_000000_000019",),
}
# (row slice, column slice, label id) painted over label id 0.
FAKE_REGIONS = (
    (slice(0, 512), slice(0, 1024), 7),
    (slice(0, 512), slice(1024, 2048), 26),
    (slice(512, 1024), slice(0, 1024), 33),
    (slice(512, 1024), slice(1024, 1536), 9),
)


def fake_label_ids():
    label_ids = np.zeros(FRAME_SHAPE, dtype=np.uint8)
    for rows, cols, label_id in FAKE_REGIONS:
        label_ids[rows, cols] = label_id
    return label_ids


def fake_image(frame_index):
    image = np.zeros(FRAME_SHAPE + (3,), dtype=np.uint8)
    image[..., 0] = 10 * (frame_index + 1)
    image[:, 1024:, 1] = 200
    return image


def _png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def write_fake_cityscapes_zips(manual_dir):
    """Writes the two zips and returns the frame names per split."""
    manual_dir.mkdir(parents=True, exist_ok=True)
    label_png = _png_bytes(fake_label_ids())
    image_zip = zipfile.ZipFile(manual_dir / IMAGES_ZIP, "w")
    label_zip = zipfile.ZipFile(manual_dir / LABELS_ZIP, "w")
    with image_zip, label_zip:
        frame_index = 0
        for split, frames in FAKE_FRAMES.items():
            for frame in frames:
                city = frame.split("_")[0]
                image_zip.writestr(
                    f"leftImg8bit/{split}/{city}/{frame}_leftImg8bit.png",
                    _png_bytes(fake_image(frame_index)),
                )
                label_zip.writestr(
                    f"gtFine/{split}/{city}/{frame}_gtFine_labelIds.png",
                    label_png,
                )
                frame_index += 1
    return FAKE_FRAMES
