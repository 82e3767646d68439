"""Learning-rate schedules for segmentation training."""

import keras
from keras import ops

DEFAULT_DECAY_POWER = 0.9


@keras.saving.register_keras_serializable(package="keras_refinenet")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up followed by the "poly" decay of DeepLab/RefineNet.

    For `step < warmup_steps` the rate rises linearly from
    `initial_learning_rate * warmup_start_factor` to `initial_learning_rate`;
    afterwards it is
    `(initial - end) * (1 - t / decay_steps) ** power + end` with
    `t = min(step - warmup_steps, decay_steps)`.

    Args:
        initial_learning_rate: rate at the end of the warm-up.
        decay_steps: steps of the decay phase (after the warm-up).
        end_learning_rate: rate reached after `decay_steps`.
        power: exponent of the decay (0.9 in the papers).
        warmup_steps: steps of linear warm-up; 0 for none.
        warmup_start_factor: fraction of the initial rate at step 0.

    Example:

    >>> schedule = WarmupPolynomialDecay(0.1, decay_steps=10, power=1.0)
    >>> [round(float(schedule(step)), 3) for step in (0, 5, 10, 20)]
    [0.1, 0.05, 0.0, 0.0]
    """

    def __init__(
        self,
        initial_learning_rate,
        decay_steps,
        end_learning_rate=0.0,
        power=DEFAULT_DECAY_POWER,
        warmup_steps=0,
        warmup_start_factor=0.1,
    ):
        if decay_steps < 1:
            raise ValueError(
                "`decay_steps` must be a positive integer. "
                f"Received: decay_steps={decay_steps}"
            )
        if warmup_steps < 0:
            raise ValueError(
                "`warmup_steps` must be >= 0. "
                f"Received: warmup_steps={warmup_steps}"
            )
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.warmup_steps = warmup_steps
        self.warmup_start_factor = warmup_start_factor

    def __call__(self, step):
        step = ops.cast(step, "float32")
        initial = ops.cast(self.initial_learning_rate, "float32")
        end = ops.cast(self.end_learning_rate, "float32")
        decay_step = ops.clip(step - self.warmup_steps, 0.0, self.decay_steps)
        remaining = 1.0 - decay_step / float(self.decay_steps)
        decayed = (initial - end) * ops.power(remaining, self.power) + end
        if not self.warmup_steps:
            return decayed
        progress = ops.minimum(step / float(self.warmup_steps), 1.0)
        factor = (
            self.warmup_start_factor
            + (1.0 - self.warmup_start_factor) * progress
        )
        return ops.where(step < self.warmup_steps, initial * factor, decayed)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "warmup_steps": self.warmup_steps,
            "warmup_start_factor": self.warmup_start_factor,
        }
