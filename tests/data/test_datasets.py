import numpy as np
import pytest
from PIL import Image

from keras_refinenet.data import datasets
from keras_refinenet.data.cityscapes import CITYSCAPES_CLASS_NAMES
from keras_refinenet.data.synthetic import (
    SYNTHETIC_CLASS_NAMES,
    make_synthetic_arrays,
)


def _write_pairs(folder, count, size=8, num_classes=3):
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir(parents=True)
    for index in range(count):
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        mask = rng.integers(0, num_classes, (size, size), dtype=np.uint8)
        Image.fromarray(image).save(folder / "images" / f"f{index}.png")
        Image.fromarray(mask).save(folder / "masks" / f"f{index}.png")


def test_every_dataset_name_has_its_classes():
    assert datasets.DATASET_NAMES == ("cityscapes", "folder", "synthetic")
    assert datasets.DATASET_CLASS_NAMES["cityscapes"] == CITYSCAPES_CLASS_NAMES
    assert len(CITYSCAPES_CLASS_NAMES) == 19
    assert datasets.DATASET_CLASS_NAMES["folder"] is None


@pytest.mark.parametrize("split, seed", [("train", 1), ("val", 2), ("test", 3)])
def test_synthetic_splits_use_their_own_seed(split, seed):
    dataset = datasets.load_dataset(
        "synthetic", split, synthetic_images=3, synthetic_image_size=16
    )
    assert dataset.size == 3 and dataset.num_classes == 4
    assert dataset.class_names == SYNTHETIC_CLASS_NAMES
    images, masks = make_synthetic_arrays(3, image_size=16, seed=seed)
    loaded = list(dataset.examples.as_numpy_iterator())
    np.testing.assert_array_equal(np.stack([i for i, _ in loaded]), images)
    np.testing.assert_array_equal(np.stack([m for _, m in loaded]), masks)


def test_synthetic_split_sizes_default_per_split():
    dataset = datasets.load_dataset("synthetic", "val", synthetic_image_size=8)
    assert dataset.size == datasets.SYNTHETIC_SIZES["val"] == 64


def test_folder_dataset_layout(tmp_path):
    _write_pairs(tmp_path / "train", 3)
    _write_pairs(tmp_path / "val", 2)
    train = datasets.load_dataset("folder", data_dir=tmp_path, num_classes=3)
    val = datasets.load_dataset(
        "folder", "val", data_dir=tmp_path, num_classes=3
    )
    assert (train.size, val.size) == (3, 2)
    assert train.class_names is None and train.num_classes == 3
    image, mask = next(iter(val.examples))
    assert image.shape == (8, 8, 3) and mask.shape == (8, 8)


def test_dataset_errors_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="Received: num_classes=None"):
        datasets.load_dataset("folder", data_dir=tmp_path)
    with pytest.raises(ValueError, match="Received: data_dir=None"):
        datasets.load_dataset("folder", num_classes=2)
    with pytest.raises(ValueError, match="Received: data_dir="):
        datasets.load_dataset("folder", data_dir=tmp_path, num_classes=2)
    with pytest.raises(ValueError, match="Received: name='coco'"):
        datasets.load_dataset("coco")
    with pytest.raises(ValueError, match="Received: split='extra'"):
        datasets.load_dataset("synthetic", "extra")


def test_class_names_fall_back_in_order():
    assert datasets.class_names_for(2, None, ["x"], ("p", "q")) == ("p", "q")
    assert datasets.class_names_for(3) == ("class_0", "class_1", "class_2")
    assert datasets.default_class_names(0) == ()
