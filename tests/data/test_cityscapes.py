import numpy as np
import pytest
import tensorflow as tf
from cityscapes_fakes import (
    FAKE_FRAMES,
    fake_image,
    write_fake_cityscapes_zips,
)

from keras_refinenet.data.cityscapes import (
    CITYSCAPES_CLASS_NAMES,
    CITYSCAPES_LABELS,
    CITYSCAPES_PALETTE,
    label_ids_to_train_ids,
    load_cityscapes,
    train_ids_to_label_ids,
)

# (label id, train id) pairs from cityscapesScripts labels.py.
OFFICIAL_PAIRS = [
    (0, 255), (1, 255), (6, 255), (7, 0), (8, 1), (9, 255), (10, 255),
    (11, 2), (14, 255), (16, 255), (17, 5), (18, 255), (19, 6), (23, 10),
    (24, 11), (26, 13), (28, 15), (29, 255), (30, 255), (31, 16), (33, 18),
]  # fmt: skip


def test_official_table():
    assert len(CITYSCAPES_LABELS) == 35
    assert CITYSCAPES_CLASS_NAMES[0] == "road"
    assert CITYSCAPES_CLASS_NAMES[-1] == "bicycle"
    assert CITYSCAPES_CLASS_NAMES[11] == "person"
    assert len(CITYSCAPES_CLASS_NAMES) == len(CITYSCAPES_PALETTE) == 19
    assert CITYSCAPES_PALETTE[0] == (128, 64, 128)
    assert CITYSCAPES_PALETTE[10] == (70, 130, 180)
    assert CITYSCAPES_PALETTE[18] == (119, 11, 32)
    plate = CITYSCAPES_LABELS[-1]
    assert (plate.name, plate.id, plate.category) == (
        "license plate",
        -1,
        "vehicle",
    )


def test_label_ids_to_train_ids_numpy_and_tensor():
    label_ids, train_ids = np.array(OFFICIAL_PAIRS).T
    np.testing.assert_array_equal(
        label_ids_to_train_ids(label_ids.astype(np.uint8)), train_ids
    )
    np.testing.assert_array_equal(
        label_ids_to_train_ids(np.array([-1, 34, 200])), [255, 255, 255]
    )
    tensor = label_ids_to_train_ids(tf.constant(label_ids, tf.uint8))
    assert tensor.dtype == tf.uint8
    np.testing.assert_array_equal(tensor.numpy(), train_ids)
    graph_fn = tf.function(label_ids_to_train_ids)
    np.testing.assert_array_equal(
        graph_fn(tf.constant([[-1, 26]], tf.int32)).numpy(), [[255, 13]]
    )


def test_train_ids_to_label_ids():
    np.testing.assert_array_equal(
        train_ids_to_label_ids(np.array([0, 1, 2, 10, 13, 18, 255, 19])),
        [7, 8, 11, 23, 26, 33, 0, 0],
    )
    round_trip = label_ids_to_train_ids(
        train_ids_to_label_ids(tf.range(19, dtype=tf.int32))
    )
    np.testing.assert_array_equal(round_trip.numpy(), np.arange(19))


def test_unknown_split_message():
    with pytest.raises(ValueError, match="Received: split='testing'"):
        load_cityscapes("testing")


def test_tfds_builder_on_fake_zips(tmp_path):
    write_fake_cityscapes_zips(tmp_path / "manual")
    data_dir = str(tmp_path / "tfds")
    manual_dir = str(tmp_path / "manual")
    train = list(
        load_cityscapes("train", data_dir=data_dir, manual_dir=manual_dir)
    )
    assert len(train) == len(FAKE_FRAMES["train"])
    val = list(load_cityscapes("val", data_dir=data_dir))
    assert len(val) == len(FAKE_FRAMES["val"])
    image, mask = (tensor.numpy() for tensor in val[0])
    assert image.shape == (1024, 2048, 3) and image.dtype == np.uint8
    assert mask.shape == (1024, 2048) and mask.dtype == np.uint8
    # The val frame is the third one written (frame index 2).
    np.testing.assert_array_equal(image[0, 0], fake_image(2)[0, 0])
    # Regions: road (7), car (26), bicycle (33), parking (9), unlabeled (0).
    assert mask[10, 10] == 0
    assert mask[10, 2000] == 13
    assert mask[1000, 10] == 18
    assert mask[1000, 1100] == 255
    assert mask[1000, 2000] == 255
    assert set(np.unique(mask)) == {0, 13, 18, 255}
