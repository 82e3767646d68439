import keras
from keras import ops

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="keras_refinenet")
class ImageNormalization(keras.layers.Layer):
    """Maps 0..255 RGB images to the backbone's input range inside the model.

    Computes `(inputs * scale - mean) / std` per channel, so exported graphs
    take raw pixels. The defaults are the ImageNet statistics on 0..1 input
    used by the authors' PyTorch code.

    Args:
        scale: factor applied to the raw pixel values first.
        mean: per-channel mean subtracted after scaling.
        std: per-channel standard deviation divided by last.
        **kwargs: base layer arguments.

    Example:

    >>> import numpy as np
    >>> layer = ImageNormalization(scale=1.0, mean=(1, 1, 1), std=(2, 2, 2))
    >>> float(layer(np.full((1, 1, 1, 3), 5.0, "float32"))[0, 0, 0, 0])
    2.0
    """

    def __init__(
        self,
        scale=1.0 / 255.0,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        **kwargs,
    ):
        super().__init__(**kwargs)
        mean, std = list(mean), list(std)
        if len(mean) != len(std):
            raise ValueError(
                "`mean` and `std` need the same number of channels. "
                f"Received: mean={mean}, std={std}"
            )
        if any(value <= 0 for value in std):
            raise ValueError(
                f"`std` entries must be positive. Received: std={std}"
            )
        self.scale = float(scale)
        self.mean = [float(value) for value in mean]
        self.std = [float(value) for value in std]

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        mean = ops.convert_to_tensor(self.mean, self.compute_dtype)
        inv_std = ops.convert_to_tensor(
            [1.0 / value for value in self.std], self.compute_dtype
        )
        return (x * self.scale - mean) * inv_std

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"scale": self.scale, "mean": self.mean, "std": self.std})
        return config
