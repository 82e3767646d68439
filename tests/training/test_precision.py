import keras
import numpy as np
import pytest

from keras_refinenet.models.demo import build_demo_model
from keras_refinenet.training.defaults import RefineNetSGD
from keras_refinenet.training.precision import precision_policy

IMAGE_SIZE = 32


def _batch():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, IMAGE_SIZE, IMAGE_SIZE, 3))
    masks = rng.integers(0, 3, (2, IMAGE_SIZE, IMAGE_SIZE))
    masks[:, 0] = 255
    return images.astype("float32"), masks


@pytest.mark.parametrize(
    "policy, compute_dtype",
    [("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")],
)
def test_mixed_precision_trains_with_float32_logits(policy, compute_dtype):
    with precision_policy(policy) as name:
        assert name == policy
        model = build_demo_model(3)
    assert keras.config.dtype_policy().name == "float32"
    assert model.backbone.layers[-1].compute_dtype == compute_dtype
    model.compile(learning_rate=1e-3, decoder_lr_multiplier=10.0)
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        inner = model.optimizer.inner_optimizer
    else:
        inner = model.optimizer
    assert isinstance(inner, RefineNetSGD)
    assert inner.learning_rate_multiplier == 10.0
    images, masks = _batch()
    kernel = model.get_layer("classifier").kernel
    before = np.array(kernel.numpy())
    loss = model.train_on_batch(images, masks, return_dict=True)["loss"]
    assert np.isfinite(loss)
    assert not np.array_equal(before, kernel.numpy())
    assert kernel.dtype == "float32"
    logits = model(images, training=False)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"


def test_unknown_precision_is_named():
    with pytest.raises(ValueError, match="Received: mixed_precision='fp8'"):
        with precision_policy("fp8"):
            pass


def test_the_policy_is_restored_after_an_error():
    keras.config.set_dtype_policy("mixed_float16")
    with pytest.raises(KeyError):
        with precision_policy(None):
            assert keras.config.dtype_policy().name == "float32"
            raise KeyError("stop")
    assert keras.config.dtype_policy().name == "mixed_float16"
