import keras
import numpy as np
import pytest

from keras_refinenet.models.demo import build_demo_model
from keras_refinenet.training.defaults import (
    RefineNetAdamW,
    RefineNetSGD,
    build_optimizer,
    compile_arguments,
    decoder_variables,
)
from keras_refinenet.training.losses import SparseCategoricalCrossentropyIgnore
from keras_refinenet.training.metrics import MeanIoU, PixelAccuracy
from keras_refinenet.training.schedules import WarmupPolynomialDecay

LEARNING_RATE = 0.05
MULTIPLIER = 10.0


@pytest.fixture(scope="module")
def model():
    return build_demo_model(3)


def _snapshot(variables):
    return [np.array(v.numpy(), dtype=np.float64) for v in variables]


def test_decoder_variables_are_everything_but_the_backbone(model):
    decoder = decoder_variables(model)
    backbone = model.backbone.image_encoder.trainable_variables
    assert len(decoder) + len(backbone) == len(model.trainable_variables)
    decoder_paths = {v.path for v in decoder}
    assert not decoder_paths & {v.path for v in backbone}
    assert any("classifier" in path for path in decoder_paths)


def test_sgd_step_moves_decoder_ten_times_as_far(model, rng):
    optimizer = compile_arguments(
        model,
        learning_rate=LEARNING_RATE,
        weight_decay=None,
        decoder_lr_multiplier=MULTIPLIER,
        global_clipnorm=None,
    )["optimizer"]
    assert isinstance(optimizer, RefineNetSGD)
    variables = model.trainable_variables
    before = _snapshot(variables)
    grads = [rng.normal(size=v.shape).astype("float32") for v in variables]
    optimizer.apply_gradients(zip(grads, variables))
    after = _snapshot(variables)
    backbone_ids = {
        id(v) for v in model.backbone.image_encoder.trainable_variables
    }
    for variable, old, new, grad in zip(variables, before, after, grads):
        # First step of SGD with momentum: velocity = -lr * g.
        factor = 1.0 if id(variable) in backbone_ids else MULTIPLIER
        expected = old - factor * LEARNING_RATE * grad
        np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-6)


def _two_variable_optimizer(optimizer_cls, **kwargs):
    backbone_weight = keras.Variable(np.array([1.0, -2.0], "float32"))
    decoder_weight = keras.Variable(np.array([1.0, -2.0], "float32"))
    optimizer = optimizer_cls(learning_rate_multiplier=MULTIPLIER, **kwargs)
    optimizer.set_multiplied_variables([decoder_weight])
    return optimizer, backbone_weight, decoder_weight


def test_adamw_multiplier_scales_the_step_and_weight_decay():
    weight_decay = 0.1
    optimizer, backbone_weight, decoder_weight = _two_variable_optimizer(
        RefineNetAdamW,
        learning_rate=LEARNING_RATE,
        weight_decay=weight_decay,
        epsilon=1e-7,
    )
    gradient = np.array([0.5, 3.0], "float32")
    optimizer.apply([gradient, gradient], [backbone_weight, decoder_weight])
    start = np.array([1.0, -2.0])
    for weight, factor in ((backbone_weight, 1.0), (decoder_weight, 10.0)):
        lr = LEARNING_RATE * factor
        decayed = start - start * weight_decay * lr
        # Adam's first step: lr * sqrt(1 - b2) g / (sqrt(1 - b2) |g| + eps).
        root = np.sqrt(1.0 - 0.999)
        expected = decayed - lr * root * gradient / (
            root * np.abs(gradient) + 1e-7
        )
        np.testing.assert_allclose(weight.numpy(), expected, atol=1e-5)


def test_gradient_scaling_would_not_do_for_adam():
    # The multiplier acts on the rate: scaling Adam's gradients by 10 would
    # leave its step unchanged, but the decoder must move 10x as far.
    optimizer, backbone_weight, decoder_weight = _two_variable_optimizer(
        RefineNetAdamW, learning_rate=LEARNING_RATE, weight_decay=0.0
    )
    gradient = np.array([0.5, 3.0], "float32")
    optimizer.apply([gradient, gradient], [backbone_weight, decoder_weight])
    start = np.array([1.0, -2.0])
    backbone_step = backbone_weight.numpy() - start
    decoder_step = decoder_weight.numpy() - start
    np.testing.assert_allclose(decoder_step, MULTIPLIER * backbone_step, 1e-5)


def test_default_multiplier_leaves_rates_alone():
    optimizer, backbone_weight, decoder_weight = _two_variable_optimizer(
        RefineNetSGD, learning_rate=LEARNING_RATE
    )
    optimizer.learning_rate_multiplier = 1.0
    gradient = np.ones(2, "float32")
    optimizer.apply([gradient, gradient], [backbone_weight, decoder_weight])
    np.testing.assert_allclose(backbone_weight.numpy(), decoder_weight.numpy())


def test_compile_defaults(model):
    arguments = compile_arguments(model, decay_steps=100, jit_compile=False)
    assert isinstance(arguments["loss"], SparseCategoricalCrossentropyIgnore)
    assert arguments["loss"].ignore_class == 255
    mean_iou, pixel_accuracy = arguments["metrics"]
    assert isinstance(mean_iou, MeanIoU) and mean_iou.num_classes == 3
    assert isinstance(pixel_accuracy, PixelAccuracy)
    assert arguments["jit_compile"] is False
    optimizer = arguments["optimizer"]
    assert isinstance(optimizer._learning_rate, WarmupPolynomialDecay)
    assert float(optimizer.learning_rate) == pytest.approx(1e-2)
    assert float(optimizer.momentum) == pytest.approx(0.9)


def test_refinenet_compile_uses_the_defaults(model):
    model.compile(optimizer_name="adamw", decoder_lr_multiplier=MULTIPLIER)
    assert isinstance(model.optimizer, RefineNetAdamW)
    assert model.optimizer.learning_rate_multiplier == MULTIPLIER
    assert model.optimizer.is_multiplied(model.get_layer("classifier").kernel)
    backbone_kernel = model.backbone.image_encoder.trainable_variables[0]
    assert not model.optimizer.is_multiplied(backbone_kernel)


def test_optimizer_config_round_trip():
    optimizer = RefineNetSGD(learning_rate=0.1, learning_rate_multiplier=4.0)
    restored = RefineNetSGD.from_config(optimizer.get_config())
    assert restored.learning_rate_multiplier == 4.0


def test_bad_arguments_are_named(model):
    with pytest.raises(ValueError, match="Received: optimizer_name='adam'"):
        build_optimizer(model, optimizer_name="adam")
    with pytest.raises(ValueError, match="learning_rate_multiplier=0"):
        RefineNetSGD(learning_rate_multiplier=0)


# === The defaults train every preset architecture from random weights ===

from keras_refinenet import RefineNet  # noqa: E402
from keras_refinenet.training.defaults import (  # noqa: E402
    DEFAULT_GLOBAL_CLIPNORM,
)

FIT_CLASSES = 3
FIT_IMAGES = 4
FIT_SIZE = 64
FIT_BATCH = 2
FIT_EPOCHS = 3
# ResNet-101/152 presets take minutes on a CPU: run with `-m large`.
SLOW_DEPTH_TAGS = ("101", "152")


def _preset_params():
    return [
        pytest.param(
            name,
            marks=[pytest.mark.large]
            if any(tag in name for tag in SLOW_DEPTH_TAGS)
            else [],
        )
        for name in sorted(RefineNet.presets)
    ]


@pytest.mark.parametrize("name", _preset_params())
def test_default_compile_fits_random_init_preset(name):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (FIT_IMAGES, FIT_SIZE, FIT_SIZE, 3))
    labels = rng.integers(0, FIT_CLASSES, (FIT_IMAGES, FIT_SIZE, FIT_SIZE))
    model = RefineNet.from_preset(
        name, load_weights=False, num_classes=FIT_CLASSES
    )
    model.compile(jit_compile=False)
    assert model.optimizer.global_clipnorm == DEFAULT_GLOBAL_CLIPNORM
    history = model.fit(
        images.astype("float32"),
        labels,
        batch_size=FIT_BATCH,
        epochs=FIT_EPOCHS,
        verbose=0,
    )
    losses = history.history["loss"]
    assert np.isfinite(losses).all(), losses
    assert losses[-1] < losses[0], losses


def test_compile_takes_optimizer_clipping_keywords(model):
    model.compile(clipnorm=2.0)
    assert model.optimizer.clipnorm == 2.0
    assert model.optimizer.global_clipnorm is None
    model.compile(global_clipnorm=0.5)
    assert model.optimizer.global_clipnorm == 0.5
    model.compile(global_clipnorm=None)
    assert model.optimizer.global_clipnorm is None
    with pytest.raises(ValueError, match="Give only one of"):
        model.compile(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(
        TypeError, match="Received: unknown arguments \\['lr'\\]"
    ):
        model.compile(lr=0.1)


def test_compile_takes_loss_strings(model):
    from keras_refinenet.training.losses import CombinedLoss, LovaszSoftmaxLoss

    model.compile(loss="ce+dice")
    assert isinstance(model.loss, CombinedLoss)
    model.compile(loss="lovasz", ignore_class=0)
    assert isinstance(model.loss, LovaszSoftmaxLoss)
    assert model.loss.ignore_class == 0
