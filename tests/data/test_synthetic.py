import numpy as np

from keras_refinenet.data.synthetic import (
    SYNTHETIC_CLASS_NAMES,
    SYNTHETIC_PALETTE,
    generate_synthetic_example,
    load_synthetic,
    make_synthetic_arrays,
)


def test_deterministic_and_independent_of_count():
    images, masks = make_synthetic_arrays(5, image_size=32, seed=3)
    again_images, again_masks = make_synthetic_arrays(3, image_size=32, seed=3)
    np.testing.assert_array_equal(images[:3], again_images)
    np.testing.assert_array_equal(masks[:3], again_masks)
    other, _ = make_synthetic_arrays(3, image_size=32, seed=4)
    assert not np.array_equal(images[:3], other)


def test_shapes_classes_and_colours():
    assert len(SYNTHETIC_CLASS_NAMES) == len(SYNTHETIC_PALETTE) == 4
    images, masks = make_synthetic_arrays(40, image_size=(48, 64))
    assert images.shape == (40, 48, 64, 3) and images.dtype == np.uint8
    assert masks.shape == (40, 48, 64) and masks.dtype == np.uint8
    assert set(np.unique(masks)) == {0, 1, 2, 3}
    # Each shape class is recognisable by its mean colour.
    for cls in (1, 2, 3):
        mean_colour = images[masks == cls].mean(axis=0)
        assert np.argmax(mean_colour) == np.argmax(SYNTHETIC_PALETTE[cls])


def test_example_and_dataset_agree():
    image, mask = generate_synthetic_example(1, image_size=24, seed=7)
    dataset = list(load_synthetic(2, image_size=24, seed=7))
    np.testing.assert_array_equal(dataset[1][0].numpy(), image)
    np.testing.assert_array_equal(dataset[1][1].numpy(), mask)
