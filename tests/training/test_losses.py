import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_refinenet.training.losses import SparseCategoricalCrossentropyIgnore


def reference_cross_entropy(labels, logits, ignore=255):
    """Mean negative log-softmax over the non-ignored pixels (numpy)."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    valid = labels != ignore
    picked = np.take_along_axis(
        log_probs, np.where(valid, labels, 0)[..., None], axis=-1
    )[..., 0]
    return -picked[valid].sum() / valid.sum()


def test_hand_computed_value_skips_ignored_pixels():
    logits = np.array(
        [[[[2.0, 0.0], [0.0, 0.0]], [[0.0, 3.0], [5.0, -5.0]]]],
        dtype="float32",
    )
    labels = np.array([[[0, 1], [1, 255]]])
    # -log softmax: pixel (0,0) label 0: log(1 + e^-2); (0,1): log 2;
    # (1,0) label 1: log(1 + e^-3); (1,1) ignored.
    expected = np.log1p(np.exp(-2.0)) + np.log(2.0) + np.log1p(np.exp(-3.0))
    expected /= 3
    loss = SparseCategoricalCrossentropyIgnore()
    np.testing.assert_allclose(float(loss(labels, logits)), expected, 1e-5)


def test_mean_is_over_valid_pixels_of_whole_batch():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    labels = rng.integers(0, 4, size=(2, 3, 3))
    labels[0, :2] = 255
    loss = SparseCategoricalCrossentropyIgnore()
    np.testing.assert_allclose(
        float(loss(labels, logits)),
        reference_cross_entropy(labels, logits),
        rtol=1e-5,
    )


def test_labels_with_channel_axis_and_all_ignored():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(1, 4, 4, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(1, 4, 4))
    loss = SparseCategoricalCrossentropyIgnore()
    np.testing.assert_allclose(
        float(loss(labels[..., None], logits)),
        float(loss(labels, logits)),
    )
    assert float(loss(np.full((1, 4, 4), 255), logits)) == 0.0


def test_resize_mode_labels_uses_nearest_corner_aligned_labels():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(1, 2, 2, 3)).astype("float32")
    labels = np.full((1, 4, 4), 255)
    # With aligned corners, a 2x2 grid samples rows/cols 0 and 3 of 4.
    labels[0, 0, 0], labels[0, 0, 3], labels[0, 3, 0] = 1, 2, 0
    loss = SparseCategoricalCrossentropyIgnore(resize_mode="labels")
    expected = reference_cross_entropy(labels[:, ::3, ::3], logits)
    np.testing.assert_allclose(float(loss(labels, logits)), expected, 1e-5)


def test_resize_mode_logits_upsamples_bilinearly():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(1, 2, 2, 3)).astype("float32")
    # Corner-aligned 2x2 -> 3x3: the middle row/col is the mean of its
    # neighbours.
    upsampled = np.empty((1, 3, 3, 3), dtype="float32")
    upsampled[:, ::2, ::2] = logits
    upsampled[:, 1, ::2] = logits.mean(axis=1)
    upsampled[:, ::2, 1] = logits.mean(axis=2)
    upsampled[:, 1, 1] = logits.mean(axis=(1, 2))
    labels = rng.integers(0, 3, size=(1, 3, 3))
    labels[0, 2, 2] = 255
    loss = SparseCategoricalCrossentropyIgnore(resize_mode="logits")
    np.testing.assert_allclose(
        float(loss(labels, logits)),
        reference_cross_entropy(labels, upsampled),
        rtol=1e-5,
    )


def test_float16_logits_give_float32_loss():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(1, 4, 4, 3)).astype("float16")
    labels = rng.integers(0, 3, size=(1, 4, 4))
    value = SparseCategoricalCrossentropyIgnore()(labels, logits)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    np.testing.assert_allclose(
        float(value), reference_cross_entropy(labels, logits), rtol=1e-3
    )


def test_config_round_trip():
    loss = SparseCategoricalCrossentropyIgnore(
        ignore_class=0, resize_mode="labels", align_corners=False, name="ce"
    )
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, SparseCategoricalCrossentropyIgnore)
    assert restored.get_config() == loss.get_config()
    assert restored.resize_mode == "labels" and restored.ignore_class == 0


def test_invalid_resize_mode_message():
    with pytest.raises(ValueError, match="Received: resize_mode='bicubic'"):
        SparseCategoricalCrossentropyIgnore(resize_mode="bicubic")


def test_fit_under_distribution_strategy_and_mixed_precision():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        with strategy.scope():
            inputs = keras.Input((8, 8, 3))
            logits = keras.layers.Conv2D(3, 1, strides=2)(inputs)
            model = keras.Model(inputs, logits)
            model.compile(
                optimizer="sgd", loss=SparseCategoricalCrossentropyIgnore()
            )
        images = np.random.default_rng(5).normal(size=(4, 8, 8, 3))
        labels = np.random.default_rng(6).integers(0, 3, size=(4, 8, 8))
        labels[:, :4] = 255
        history = model.fit(
            images.astype("float32"), labels, batch_size=2, verbose=0
        )
    finally:
        keras.config.set_dtype_policy(previous_policy)
    assert np.isfinite(history.history["loss"][0])
