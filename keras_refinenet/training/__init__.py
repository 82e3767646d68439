"""Losses, metrics, optimizers, schedules, callbacks, precision and
distribution; `trainer.run_training` runs a whole training."""

from keras_refinenet.training.callbacks import BestCheckpoint as BestCheckpoint
from keras_refinenet.training.callbacks import NaNLossError as NaNLossError
from keras_refinenet.training.callbacks import StopOnNaNLoss as StopOnNaNLoss
from keras_refinenet.training.defaults import (
    RefineNetAdamW as RefineNetAdamW,
)
from keras_refinenet.training.defaults import RefineNetSGD as RefineNetSGD
from keras_refinenet.training.defaults import (
    compile_arguments as compile_arguments,
)
from keras_refinenet.training.distribute import get_strategy as get_strategy
from keras_refinenet.training.distribute import (
    keras_multi_worker_fixes as keras_multi_worker_fixes,
)
from keras_refinenet.training.losses import (
    SparseCategoricalCrossentropyIgnore as SparseCategoricalCrossentropyIgnore,
)
from keras_refinenet.training.metrics import MeanIoU as MeanIoU
from keras_refinenet.training.metrics import PixelAccuracy as PixelAccuracy
from keras_refinenet.training.precision import (
    precision_policy as precision_policy,
)
from keras_refinenet.training.schedules import (
    WarmupPolynomialDecay as WarmupPolynomialDecay,
)
