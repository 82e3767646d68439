"""`RefineNet.compile()` defaults: optimizer, schedule, loss and metrics.

Keras 3 optimizers have one learning rate for all variables. RefineNet is
trained with a larger rate on the decoder than on the backbone, so the
optimizers here (`RefineNetSGD`, `RefineNetAdamW`) scale the learning rate
of chosen variables inside `update_step`, per variable, which is exact for
any update rule (SGD with momentum, Adam), and scale their decoupled weight
decay the same way.
"""

import keras

from keras_refinenet.training.losses import (
    IGNORE_CLASS,
    SparseCategoricalCrossentropyIgnore,
    get_loss,
    is_loss_spec,
)
from keras_refinenet.training.metrics import MeanIoU, PixelAccuracy
from keras_refinenet.training.schedules import (
    DEFAULT_DECAY_POWER,
    WarmupPolynomialDecay,
)

AUTO = "auto"
# Clipping the global gradient norm keeps randomly initialised decoders from
# diverging in their first steps (measured: refinenet50 from random weights
# on 64x64 images reaches NaN in the second epoch without it).
DEFAULT_GLOBAL_CLIPNORM = 1.0
CLIPPING_ARGUMENTS = ("clipnorm", "clipvalue", "global_clipnorm")
MODEL_COMPILE_ARGUMENTS = (
    "loss_weights",
    "weighted_metrics",
    "run_eagerly",
    "steps_per_execution",
    "jit_compile",
    "auto_scale_loss",
)
OPTIMIZER_NAMES = ("sgd", "adamw")
DEFAULT_LEARNING_RATES = {"sgd": 1e-2, "adamw": 1e-4}
DEFAULT_WEIGHT_DECAYS = {"sgd": 1e-4, "adamw": 1e-2}
DEFAULT_MOMENTUM = 0.9
AUTHORS_DECODER_LR_MULTIPLIER = 10.0


class LearningRateMultiplierMixin:
    """Multiplies the learning rate of selected variables.

    Mixed into a Keras optimizer class; `set_multiplied_variables` picks the
    variables (typically the decoder's) whose updates use
    `learning_rate * learning_rate_multiplier`. Their decoupled weight decay
    is scaled alike, as it is proportional to the learning rate.
    """

    def __init__(self, *args, learning_rate_multiplier=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        if learning_rate_multiplier <= 0:
            raise ValueError(
                "`learning_rate_multiplier` must be positive. "
                f"Received: learning_rate_multiplier={learning_rate_multiplier}"
            )
        self.learning_rate_multiplier = learning_rate_multiplier
        self._multiplied_keys = frozenset()

    def set_multiplied_variables(self, variables):
        """Chooses the variables that get the multiplied learning rate.

        Args:
            variables: list of model variables.
        """
        self._multiplied_keys = frozenset(self._var_key(v) for v in variables)

    def is_multiplied(self, variable):
        """Whether `variable` is updated with the multiplied rate."""
        return self._var_key(variable) in self._multiplied_keys

    def update_step(self, gradient, variable, learning_rate):
        if self.learning_rate_multiplier != 1.0 and self.is_multiplied(
            variable
        ):
            learning_rate = learning_rate * self.learning_rate_multiplier
        return super().update_step(gradient, variable, learning_rate)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None or self.learning_rate_multiplier == 1.0:
            return super()._apply_weight_decay(variables)
        multiplied = [v for v in variables if self.is_multiplied(v)]
        others = [v for v in variables if not self.is_multiplied(v)]
        super()._apply_weight_decay(others)
        base_weight_decay = self.weight_decay
        self.weight_decay = base_weight_decay * self.learning_rate_multiplier
        try:
            super()._apply_weight_decay(multiplied)
        finally:
            self.weight_decay = base_weight_decay

    def get_config(self):
        config = super().get_config()
        config["learning_rate_multiplier"] = self.learning_rate_multiplier
        return config


@keras.saving.register_keras_serializable(package="keras_refinenet")
class RefineNetSGD(LearningRateMultiplierMixin, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with a learning-rate multiplier for some
    variables (see `set_multiplied_variables`).

    Args:
        learning_rate_multiplier: factor on the learning rate (and weight
            decay) of the variables chosen by `set_multiplied_variables`.
        *args: arguments of `keras.optimizers.SGD`.
        **kwargs: arguments of `keras.optimizers.SGD`.

    Example:

    >>> import keras
    >>> backbone_w = keras.Variable([1.0])
    >>> decoder_w = keras.Variable([1.0])
    >>> optimizer = RefineNetSGD(learning_rate=0.1,
    ...                          learning_rate_multiplier=10.0)
    >>> optimizer.set_multiplied_variables([decoder_w])
    >>> optimizer.apply([keras.ops.ones(1), keras.ops.ones(1)],
    ...                 [backbone_w, decoder_w])
    >>> [round(float(w.numpy()[0]), 3) for w in (backbone_w, decoder_w)]
    [0.9, 0.0]
    """


@keras.saving.register_keras_serializable(package="keras_refinenet")
class RefineNetAdamW(LearningRateMultiplierMixin, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with a learning-rate multiplier for some
    variables (see `set_multiplied_variables`).

    Args:
        learning_rate_multiplier: factor on the learning rate (and weight
            decay) of the variables chosen by `set_multiplied_variables`.
        *args: arguments of `keras.optimizers.AdamW`.
        **kwargs: arguments of `keras.optimizers.AdamW`.

    Example:

    >>> optimizer = RefineNetAdamW(learning_rate=1e-3,
    ...                            learning_rate_multiplier=10.0)
    >>> optimizer.learning_rate_multiplier
    10.0
    """


def decoder_variables(model):
    """Trainable variables of `model` that are not in its image encoders
    (also the per-scale encoders of multi-scale models)."""
    encoders = [getattr(model.backbone, "image_encoder", model.backbone)]
    encoders += list(getattr(model.backbone, "scale_image_encoders", []))
    backbone_ids = {
        id(v) for encoder in encoders for v in encoder.trainable_variables
    }
    return [v for v in model.trainable_variables if id(v) not in backbone_ids]


def build_optimizer(
    model,
    optimizer_name="sgd",
    learning_rate=None,
    decay_steps=None,
    decay_power=DEFAULT_DECAY_POWER,
    warmup_steps=0,
    momentum=DEFAULT_MOMENTUM,
    weight_decay=AUTO,
    decoder_lr_multiplier=1.0,
    **optimizer_kwargs,
):
    """The default RefineNet optimizer.

    Args:
        model: the `RefineNet` to train (its `backbone` defines which
            variables are the decoder's).
        optimizer_name: `"sgd"` (with momentum) or `"adamw"`.
        learning_rate: base (backbone) learning rate; `None` uses 1e-2 for
            SGD and 1e-4 for AdamW.
        decay_steps: total training steps of the polynomial decay; `None`
            keeps the learning rate constant after the warm-up.
        decay_power: exponent of the polynomial decay.
        warmup_steps: linear warm-up steps.
        momentum: SGD momentum.
        weight_decay: decoupled weight decay; `"auto"` uses 1e-4 for SGD and
            1e-2 for AdamW, `None` disables it.
        decoder_lr_multiplier: learning-rate factor of the decoder relative
            to the backbone; the authors use 10.
        **optimizer_kwargs: more optimizer arguments (`clipnorm`, ...).

    Returns:
        A `RefineNetSGD` or `RefineNetAdamW`.

    Example:

    >>> from keras_refinenet.models.backbones import resnet_backbone
    >>> from keras_refinenet.models.refinenet import RefineNet
    >>> model = RefineNet(resnet_backbone(50), num_classes=3,
    ...                   top_filters=16, decoder_filters=8)
    >>> optimizer = build_optimizer(model, decay_steps=100,
    ...                             decoder_lr_multiplier=10.0)
    >>> round(float(optimizer.learning_rate), 4)
    0.01
    """
    if optimizer_name not in OPTIMIZER_NAMES:
        raise ValueError(
            f"`optimizer_name` must be one of {OPTIMIZER_NAMES}. "
            f"Received: optimizer_name={optimizer_name!r}"
        )
    if learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATES[optimizer_name]
    if weight_decay == AUTO:
        weight_decay = DEFAULT_WEIGHT_DECAYS[optimizer_name]
    schedule = learning_rate
    if decay_steps is not None or warmup_steps:
        schedule = WarmupPolynomialDecay(
            learning_rate,
            decay_steps=max(int(decay_steps or 1), 1),
            power=decay_power if decay_steps is not None else 0.0,
            warmup_steps=warmup_steps,
        )
    if optimizer_name == "sgd":
        optimizer = RefineNetSGD(
            learning_rate=schedule,
            momentum=momentum,
            weight_decay=weight_decay,
            learning_rate_multiplier=decoder_lr_multiplier,
            **optimizer_kwargs,
        )
    else:
        optimizer = RefineNetAdamW(
            learning_rate=schedule,
            weight_decay=weight_decay or 0.0,
            learning_rate_multiplier=decoder_lr_multiplier,
            **optimizer_kwargs,
        )
    optimizer.set_multiplied_variables(decoder_variables(model))
    return optimizer


def default_metrics(num_classes, ignore_class=IGNORE_CLASS):
    """Mean IoU (with per-class IoU) and pixel accuracy, ignoring a label.

    Args:
        num_classes: number of classes.
        ignore_class: label value that is skipped.

    Returns:
        A list of two metrics named `mean_iou` and `pixel_accuracy`.

    Example:

    >>> [metric.name for metric in default_metrics(3)]
    ['mean_iou', 'pixel_accuracy']
    """
    return [
        MeanIoU(num_classes=num_classes, ignore_class=ignore_class),
        PixelAccuracy(ignore_class=ignore_class),
    ]


def compile_arguments(
    model,
    optimizer=AUTO,
    loss=AUTO,
    metrics=AUTO,
    optimizer_name="sgd",
    learning_rate=None,
    decay_steps=None,
    decay_power=DEFAULT_DECAY_POWER,
    warmup_steps=0,
    momentum=DEFAULT_MOMENTUM,
    weight_decay=AUTO,
    decoder_lr_multiplier=1.0,
    global_clipnorm=AUTO,
    clipnorm=None,
    clipvalue=None,
    ignore_class=IGNORE_CLASS,
    loss_resize_mode="logits",
    **compile_kwargs,
):
    """Arguments for `keras.Model.compile` with RefineNet's defaults.

    Args:
        model: the `RefineNet` being compiled.
        optimizer: an optimizer, or `"auto"` for `build_optimizer(...)`
            with the arguments below.
        loss: a loss, a `get_loss` string (`"ce+dice"`, `"lovasz"`, ...),
            or `"auto"` for `SparseCategoricalCrossentropyIgnore`.
        metrics: a list of metrics, or `"auto"` for mean IoU and pixel
            accuracy.
        optimizer_name: `"sgd"` or `"adamw"` (see `build_optimizer`).
        learning_rate: base learning rate (see `build_optimizer`).
        decay_steps: total steps of the polynomial decay.
        decay_power: exponent of the decay.
        warmup_steps: linear warm-up steps.
        momentum: SGD momentum.
        weight_decay: decoupled weight decay, `"auto"` or `None`.
        decoder_lr_multiplier: decoder learning-rate factor (10 in the
            authors' recipe).
        global_clipnorm: clip the global gradient norm to this value;
            `"auto"` uses 1.0 (the command line's default too) unless
            `clipnorm` or `clipvalue` is given; `None` for no clipping.
        clipnorm: clip each gradient's norm to this value instead.
        clipvalue: clip each gradient's values to this range instead.
        ignore_class: label value ignored by the loss and the metrics.
        loss_resize_mode: `"logits"` or `"labels"`, when logits and labels
            differ in size.
        **compile_kwargs: passed to `keras.Model.compile`; one of
            `MODEL_COMPILE_ARGUMENTS` (`jit_compile`,
            `steps_per_execution`, ...).

    Returns:
        A dict of `keras.Model.compile` arguments.

    Example:

    >>> from keras_refinenet.models.backbones import resnet_backbone
    >>> from keras_refinenet.models.refinenet import RefineNet
    >>> model = RefineNet(resnet_backbone(50), num_classes=3,
    ...                   top_filters=16, decoder_filters=8)
    >>> sorted(compile_arguments(model))
    ['loss', 'metrics', 'optimizer']
    """
    unknown = sorted(set(compile_kwargs) - set(MODEL_COMPILE_ARGUMENTS))
    if unknown:
        raise TypeError(
            "`RefineNet.compile()` takes the arguments of "
            "`keras_refinenet.training.defaults.compile_arguments` "
            "(optimizer_name, learning_rate, decay_steps, warmup_steps, "
            "momentum, weight_decay, decoder_lr_multiplier, global_clipnorm, "
            "clipnorm, clipvalue, ignore_class, loss_resize_mode) and those "
            f"of `keras.Model.compile` {MODEL_COMPILE_ARGUMENTS}. "
            f"Received: unknown arguments {unknown}"
        )
    clipping = {"clipnorm": clipnorm, "clipvalue": clipvalue}
    if global_clipnorm == AUTO:
        global_clipnorm = (
            None
            if clipnorm is not None or clipvalue is not None
            else DEFAULT_GLOBAL_CLIPNORM
        )
    clipping["global_clipnorm"] = global_clipnorm
    clipping = {key: value for key, value in clipping.items() if value}
    if len(clipping) > 1:
        raise ValueError(
            f"Give only one of {CLIPPING_ARGUMENTS}. Received: {clipping}"
        )
    if optimizer != AUTO and (clipnorm is not None or clipvalue is not None):
        raise ValueError(
            "Gradient clipping arguments apply to the default optimizer; "
            "set them on your optimizer instead. "
            f"Received: optimizer={optimizer!r}, {clipping}"
        )
    if optimizer == AUTO:
        optimizer = build_optimizer(
            model,
            optimizer_name=optimizer_name,
            learning_rate=learning_rate,
            decay_steps=decay_steps,
            decay_power=decay_power,
            warmup_steps=warmup_steps,
            momentum=momentum,
            weight_decay=weight_decay,
            decoder_lr_multiplier=decoder_lr_multiplier,
            **clipping,
        )
    if isinstance(loss, str) and loss != AUTO and is_loss_spec(loss):
        loss = get_loss(
            loss, ignore_class=ignore_class, resize_mode=loss_resize_mode
        )
    if loss == AUTO:
        loss = SparseCategoricalCrossentropyIgnore(
            ignore_class=ignore_class, resize_mode=loss_resize_mode
        )
    if metrics == AUTO:
        metrics = default_metrics(model.num_classes, ignore_class)
    return {
        "optimizer": optimizer,
        "loss": loss,
        "metrics": metrics,
        **compile_kwargs,
    }
