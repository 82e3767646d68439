import numpy as np
import pytest
import tensorflow as tf

from keras_refinenet.data import augment
from keras_refinenet.data.pipeline import (
    evaluation_pipeline,
    training_pipeline,
)


def coded_dataset(count=4, height=12, width=10):
    """Images whose red channel equals the mask (labels 0..4)."""
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 5, size=(count, height, width)).astype(np.uint8)
    images = np.repeat(masks[..., None], 3, axis=-1)
    return tf.data.Dataset.from_tensor_slices((images, masks))


def first_batch(dataset):
    images, masks = next(iter(dataset))
    return images.numpy(), masks.numpy()


def test_training_batches_shapes_and_types():
    dataset = training_pipeline(
        coded_dataset(), batch_size=2, crop_size=(8, 6), seed=1
    )
    images, masks = first_batch(dataset)
    assert images.shape == (2, 8, 6, 3) and images.dtype == np.float32
    assert masks.shape == (2, 8, 6) and masks.dtype == np.int32
    assert images.min() >= 0 and images.max() <= 255
    assert set(np.unique(masks)) <= {0, 1, 2, 3, 4, 255}


def test_seeded_pipeline_is_reproducible_and_epochs_differ():
    def build():
        return training_pipeline(
            coded_dataset(), batch_size=4, crop_size=(8, 8), seed=5
        )

    first = list(build())
    second = list(build())
    np.testing.assert_array_equal(first[0][0], second[0][0])
    np.testing.assert_array_equal(first[0][1], second[0][1])
    dataset = build()
    epoch_one, epoch_two = first_batch(dataset), first_batch(dataset)
    assert not np.array_equal(epoch_one[0], epoch_two[0])


def test_crop_and_flip_keep_image_and_mask_aligned():
    dataset = training_pipeline(
        coded_dataset(count=8),
        batch_size=8,
        crop_size=(16, 16),
        seed=2,
        scale_range=None,
        jitter=False,
        image_pad_value=augment.IMAGENET_MEAN_RGB,
    )
    images, masks = first_batch(dataset)
    padded = masks == 255
    # 12x10 images in 16x16 crops: at least the bottom/right band is padding.
    assert padded.any()
    np.testing.assert_array_equal(images[..., 0][~padded], masks[~padded])
    expected_padding = np.broadcast_to(
        augment.IMAGENET_MEAN_RGB, (padded.sum(), 3)
    )
    np.testing.assert_allclose(images[padded], expected_padding, rtol=1e-6)


def test_random_scale_uses_nearest_for_masks():
    mask = tf.constant(np.arange(16).reshape(4, 4) % 3, tf.int32)
    image = tf.zeros((4, 4, 3))
    _, scaled = augment.random_scale(
        image, mask, seed=(0, 0), scale_range=(1.7, 1.7)
    )
    assert scaled.shape == (7, 7)
    assert set(np.unique(scaled.numpy())) <= {0, 1, 2}


def test_photometric_jitter_changes_and_clips():
    image = tf.constant(
        np.random.default_rng(0).uniform(0, 255, (6, 6, 3)), tf.float32
    )
    jittered = augment.photometric_jitter(image, seed=(3, 4)).numpy()
    assert jittered.min() >= 0 and jittered.max() <= 255
    assert not np.allclose(jittered, image.numpy())


def test_evaluation_pipeline_keeps_full_size():
    images, masks = first_batch(evaluation_pipeline(coded_dataset()))
    assert images.shape == (1, 12, 10, 3) and images.dtype == np.float32
    assert masks.shape == (1, 12, 10) and masks.dtype == np.int32
    np.testing.assert_array_equal(images[..., 0], masks)


def test_invalid_crop_size_message():
    with pytest.raises(ValueError, match=r"Received: crop_size=\(8, 0\)"):
        training_pipeline(coded_dataset(), batch_size=1, crop_size=(8, 0))
