"""Losses, metrics, optimizers, schedules, callbacks, precision and
distribution; `trainer.run_training` runs a whole training."""

from typing import TYPE_CHECKING

from keras_refinenet.lazy_imports import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from keras_refinenet.training.callbacks import (
        BestCheckpoint,
        NaNLossError,
        StopOnNaNLoss,
    )
    from keras_refinenet.training.defaults import (
        RefineNetAdamW,
        RefineNetSGD,
        compile_arguments,
    )
    from keras_refinenet.training.distribute import (
        get_strategy,
        keras_multi_worker_fixes,
    )
    from keras_refinenet.training.losses import (
        SparseCategoricalCrossentropyIgnore,
    )
    from keras_refinenet.training.metrics import MeanIoU, PixelAccuracy
    from keras_refinenet.training.precision import (
        precision_policy,
    )
    from keras_refinenet.training.schedules import (
        WarmupPolynomialDecay,
    )

__all__ = [
    "BestCheckpoint",
    "MeanIoU",
    "NaNLossError",
    "PixelAccuracy",
    "RefineNetAdamW",
    "RefineNetSGD",
    "SparseCategoricalCrossentropyIgnore",
    "StopOnNaNLoss",
    "WarmupPolynomialDecay",
    "compile_arguments",
    "get_strategy",
    "keras_multi_worker_fixes",
    "precision_policy",
]

__getattr__, __dir__ = _lazy_exports(__name__, __file__)
