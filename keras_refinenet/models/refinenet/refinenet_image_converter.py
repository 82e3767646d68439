"""`RefineNetImageConverter`: raw 0..255 pixels to the encoder's range."""

import keras
import keras_hub

from keras_refinenet.models.refinenet.refinenet_backbone import (
    RefineNetBackbone,
)

# The ImageNet statistics on 0..1 input of the authors' PyTorch code.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_IMAGE_SCALE = 1.0 / 255.0


def _as_list(name, value):
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values or any(not isinstance(v, (int, float)) for v in values):
        raise ValueError(
            f"`{name}` must be a number or a list of numbers. "
            f"Received: {name}={value!r}"
        )
    return [float(v) for v in values]


@keras.saving.register_keras_serializable(package="keras_refinenet")
class RefineNetImageConverter(keras_hub.layers.ImageConverter):
    """Normalizes raw RGB pixels as `(pixels * image_scale - mean) / std`.

    A keras-hub `ImageConverter` whose `scale` and `offset` come from
    `image_scale`, `mean` and `std` (each a number or one value per
    channel). It does not resize by default: RefineNet segments images of
    any size.

    Args:
        image_scale: factor applied to the raw 0..255 pixels first.
        mean: mean subtracted after scaling, scalar or per channel.
        std: standard deviation divided by last, scalar or per channel.
        image_size: `(height, width)` to resize to, `None` (default) to
            keep the input size.
        **kwargs: other `keras_hub.layers.ImageConverter` arguments.

    Example:

    >>> import numpy as np
    >>> converter = RefineNetImageConverter(image_scale=1.0, mean=1.0,
    ...                                     std=2.0)
    >>> float(converter(np.full((1, 2, 2, 3), 5.0, "float32"))[0, 0, 0, 0])
    2.0
    """

    backbone_cls = RefineNetBackbone

    def __init__(
        self,
        image_scale=DEFAULT_IMAGE_SCALE,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        image_size=None,
        **kwargs,
    ):
        # `scale` and `offset` are derived from the arguments above.
        kwargs.pop("scale", None)
        kwargs.pop("offset", None)
        mean = _as_list("mean", mean)
        std = _as_list("std", std)
        if len(mean) != len(std) and 1 not in (len(mean), len(std)):
            raise ValueError(
                "`mean` and `std` must have the same length or be scalars. "
                f"Received: mean={mean}, std={std}"
            )
        if min(std) <= 0:
            raise ValueError(f"`std` must be positive. Received: std={std}")
        channels = max(len(mean), len(std))
        mean_c = mean * channels if len(mean) == 1 else mean
        std_c = std * channels if len(std) == 1 else std
        super().__init__(
            image_size=image_size,
            scale=[image_scale / s for s in std_c],
            offset=[-m / s for m, s in zip(mean_c, std_c)],
            **kwargs,
        )
        self.image_scale = float(image_scale)
        self.mean = mean
        self.std = std

    def get_config(self):
        config = super().get_config()
        del config["scale"], config["offset"]
        config.update(
            {
                "image_scale": self.image_scale,
                "mean": self.mean,
                "std": self.std,
            }
        )
        return config
