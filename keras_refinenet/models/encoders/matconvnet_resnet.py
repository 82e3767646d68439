"""The Caffe-layout ResNet of the RefineNet authors' MatConvNet release.

The authors' backbone is MatConvNet's `imagenet-resnet-{50,101,152}-dag`
(Kaiming He's Caffe ResNets imported by `utils/import-caffe.py`) after
`fix_padding_resnet` (`main/My_net_util.m`): every convolution and pooling
pads `(k - 1) / 2` on all four sides, so each output has
`floor((H + 2 * pad - k) / stride) + 1` rows, and the stride of
`res3a`, `res4a` and `res5a` sits on the 1x1 `branch2a` and `branch1`
convolutions (the Caffe layout). keras-cv's ResNet v1 has the same layout
and output sizes, but its conv1 and pool1 pad "same": one pixel less at
the top and left when their input size is even, which shifts every
feature; the two agree only for heights and widths of the form `4n + 1`.

Names follow the MATLAB parameters: the Keras convolution `res4b22_branch2b`
holds `res4b22_branch2b_filter` (and `..._bias` where there is one) and the
BatchNormalization `bn4b22_branch2b` holds `bn4b22_branch2b_mult`,
`..._bias` and `..._moments`; `matconvnet_resnet_parameters` (and the
backbone's `matconvnet_parameters`) list them all.
"""

from typing import NamedTuple

import keras
import numpy as np
from keras_hub.models import FeaturePyramidBackbone

from keras_refinenet.constants import RGB_CHANNELS

# Bottleneck blocks per stage (res2..res5) of the released depths.
MATCONVNET_RESNET_BLOCKS = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
# The Caffe ResNet-50's conv1 has a bias; ResNet-101's and -152's have none.
MATCONVNET_CONV1_BIAS = {50: True, 101: False, 152: False}
BOTTLENECK_FILTERS = (64, 128, 256, 512)
BOTTLENECK_EXPANSION = 4
STEM_FILTERS = 64
STEM_KERNEL_SIZE = 7
BOTTLENECK_KERNEL_SIZE = 3
POOL_SIZE = 3
DOWNSAMPLING_STRIDE = 2
# Caffe numbers the stages after conv1 from 2 (res2 .. res5); stage s is
# pyramid level P{s}, at stride 2**s.
FIRST_STAGE = 2
# MatConvNet's dagnn.BatchNorm default, also the epsilon Caffe folded
# into the released sigmas.
BATCHNORM_EPSILON = 1e-5
BATCHNORM_MOMENTUM = 0.9
BLOCK_NAMINGS = ("auto", "letters", "numbered")
# "auto" names with letters while every stage fits ResNet-50's scheme.
MAX_LETTER_BLOCKS_AUTO = 6
LETTERS = "abcdefghijklmnopqrstuvwxyz"
# The numbered scheme numbers stages of at least this many blocks.
NUMBERED_MIN_BLOCKS = 4
MOMENTS_COLUMNS = 2
# Relative rounding of a float32 sigma**2 that may push sigma**2 - epsilon
# below zero for a variance of zero.
SIGMA_ROUNDING = 1e-6
MAX_LISTED_DIFFERENCES = 10

CONV_WEIGHTS = {"filter": "kernel", "bias": "bias"}
BATCHNORM_WEIGHTS = {
    "mult": ("gamma",),
    "bias": ("beta",),
    "moments": ("moving_mean", "moving_variance"),
}


class MatConvNetParameter(NamedTuple):
    """One MATLAB parameter of the backbone and the Keras weights it sets.

    Attributes:
        name: the MATLAB parameter name, e.g. `"res4b22_branch2b_filter"`.
        shape: its MATLAB size: filters `(H, W, In, Out)` (the Keras kernel
            layout), conv biases, `mult` and `bias` `(C,)` (stored `C x 1`
            or `1 x C`), `moments` `(C, 2)` holding `[mean, sigma]`.
        layer: the Keras layer name.
        weights: the Keras weight names the value sets, in order.
    """

    name: str
    shape: tuple
    layer: str
    weights: tuple


def stage_block_names(stackwise_num_blocks, block_naming="auto"):
    """Caffe block names of each stage, e.g. `["2a", "2b", "2c"]`.

    Kaiming He's ResNet-50 names blocks with letters (`4a` .. `4f`); his
    ResNet-101 and -152 keep letters in stages of 3 blocks (`res2`, `res5`)
    and number the others after `a` (`3a`, `3b1` .. `3b3`, `4a`, `4b1` ..
    `4b22`). `"auto"` picks letters when no stage has more than 6 blocks.

    Args:
        stackwise_num_blocks: blocks per stage, from `res2` on.
        block_naming: `"auto"`, `"letters"` or `"numbered"`.

    Returns:
        A list with one list of block names per stage.

    Example:

    >>> stage_block_names((3, 4, 23, 3))[1]
    ['3a', '3b1', '3b2', '3b3']
    >>> stage_block_names((3, 4, 6, 3))[2][-1]
    '4f'
    """
    if block_naming not in BLOCK_NAMINGS:
        raise ValueError(
            f"`block_naming` must be one of {BLOCK_NAMINGS}. "
            f"Received: block_naming={block_naming!r}"
        )
    if block_naming == "auto":
        fits = max(stackwise_num_blocks) <= MAX_LETTER_BLOCKS_AUTO
        block_naming = "letters" if fits else "numbered"
    names = []
    for index, num_blocks in enumerate(stackwise_num_blocks):
        stage = index + FIRST_STAGE
        if block_naming == "numbered" and num_blocks >= NUMBERED_MIN_BLOCKS:
            suffixes = ["a"] + [f"b{i}" for i in range(1, num_blocks)]
        elif num_blocks <= len(LETTERS):
            suffixes = list(LETTERS[:num_blocks])
        else:
            raise ValueError(
                f"Letter block names allow at most {len(LETTERS)} blocks "
                "per stage; use `block_naming='numbered'`. "
                f"Received: stackwise_num_blocks={stackwise_num_blocks!r}"
            )
        names.append([f"{stage}{suffix}" for suffix in suffixes])
    return names


def _conv_parameters(layer, in_channels, filters, kernel_size, use_bias):
    table = [
        MatConvNetParameter(
            f"{layer}_filter",
            (kernel_size, kernel_size, in_channels, filters),
            layer,
            (CONV_WEIGHTS["filter"],),
        )
    ]
    if use_bias:
        table.append(
            MatConvNetParameter(
                f"{layer}_bias", (filters,), layer, (CONV_WEIGHTS["bias"],)
            )
        )
    return table


def _batchnorm_parameters(layer, channels):
    return [
        MatConvNetParameter(
            f"{layer}_{suffix}",
            (channels, MOMENTS_COLUMNS) if suffix == "moments" else (channels,),
            layer,
            weights,
        )
        for suffix, weights in BATCHNORM_WEIGHTS.items()
    ]


def _parameter_table(
    stackwise_num_blocks,
    stackwise_num_filters,
    input_conv_filters,
    conv1_use_bias,
    block_naming,
    input_channels,
):
    table = _conv_parameters(
        "conv1",
        input_channels,
        input_conv_filters,
        STEM_KERNEL_SIZE,
        conv1_use_bias,
    )
    table += _batchnorm_parameters("bn_conv1", input_conv_filters)
    channels = input_conv_filters
    stages = stage_block_names(stackwise_num_blocks, block_naming)
    for blocks, filters in zip(stages, stackwise_num_filters):
        out_channels = filters * BOTTLENECK_EXPANSION
        for index, block in enumerate(blocks):
            branches = [
                ("2a", channels, filters, 1),
                ("2b", filters, filters, BOTTLENECK_KERNEL_SIZE),
                ("2c", filters, out_channels, 1),
            ]
            if index == 0:
                branches.insert(0, ("1", channels, out_channels, 1))
            for branch, in_c, out_c, kernel_size in branches:
                name = f"{block}_branch{branch}"
                table += _conv_parameters(
                    f"res{name}", in_c, out_c, kernel_size, False
                )
                table += _batchnorm_parameters(f"bn{name}", out_c)
            channels = out_channels
    return table


def matconvnet_resnet_config(depth):
    """`MatConvNetResNetBackbone` arguments of a released ResNet depth.

    Args:
        depth: 50, 101 or 152.

    Returns:
        A dict with `stackwise_num_blocks` and `conv1_use_bias`.

    Example:

    >>> matconvnet_resnet_config(101)
    {'stackwise_num_blocks': [3, 4, 23, 3], 'conv1_use_bias': False}
    """
    if depth not in MATCONVNET_RESNET_BLOCKS:
        raise ValueError(
            f"`depth` must be one of {sorted(MATCONVNET_RESNET_BLOCKS)}. "
            f"Received: depth={depth!r}"
        )
    return {
        "stackwise_num_blocks": list(MATCONVNET_RESNET_BLOCKS[depth]),
        "conv1_use_bias": MATCONVNET_CONV1_BIAS[depth],
    }


def matconvnet_resnet_parameters(depth):
    """The MATLAB parameters of `imagenet-resnet-{depth}-dag`'s convolutions.

    The table a converter checks a file against: every name, its MATLAB
    size and the Keras layer and weights of `matconvnet_resnet_backbone`
    (`depth`) it sets, in network order (`fc1000` excluded; the authors
    remove it).

    Args:
        depth: 50, 101 or 152.

    Returns:
        A list of `MatConvNetParameter`.

    Example:

    >>> table = {p.name: p for p in matconvnet_resnet_parameters(101)}
    >>> table["res4b22_branch2b_filter"].shape
    (3, 3, 256, 256)
    >>> table["bn4b22_branch2b_moments"].weights
    ('moving_mean', 'moving_variance')
    >>> "conv1_bias" in table
    False
    """
    config = matconvnet_resnet_config(depth)
    return _parameter_table(
        config["stackwise_num_blocks"],
        BOTTLENECK_FILTERS,
        STEM_FILTERS,
        config["conv1_use_bias"],
        "auto",
        RGB_CHANNELS,
    )


def batchnorm_weights_from_moments(
    mult, bias, moments, epsilon=BATCHNORM_EPSILON
):
    """Keras BatchNormalization weights from MatConvNet's `mult/bias/moments`.

    MatConvNet computes `mult * (x - mean) / sigma + bias` with `moments =
    [mean, sigma]`, sigma already including epsilon (`vl_nnbnorm`). Keras
    computes `gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) +
    beta`, so `moving_variance = sigma**2 - epsilon` with the layer's own
    epsilon. A sigma below `sqrt(epsilon)` needs a layer with a smaller
    epsilon; a negative variance within the rounding of a float32 sigma
    is set to 0.

    Args:
        mult: the `C` scale factors.
        bias: the `C` offsets.
        moments: a `(C, 2)` array of `[mean, sigma]` (MATLAB's layout).
        epsilon: the epsilon of the Keras layer the weights are for.

    Returns:
        A dict of float64 arrays `gamma`, `beta`, `moving_mean` and
        `moving_variance` (assigning them casts to the variables' dtype).

    Example:

    >>> weights = batchnorm_weights_from_moments(
    ...     [2.0], [0.5], [[1.0, 0.5]], epsilon=0.25
    ... )
    >>> float(weights["moving_variance"][0])
    0.0
    """
    mult = np.asarray(mult, np.float64).reshape(-1)
    bias = np.asarray(bias, np.float64).reshape(-1)
    moments = np.asarray(moments, np.float64)
    channels = mult.size
    if moments.shape != (channels, MOMENTS_COLUMNS) or bias.size != channels:
        raise ValueError(
            "`moments` must be a (C, 2) array of [mean, sigma] and `bias` "
            f"must have C values, C = {channels} (the size of `mult`). "
            f"Received: moments.shape={moments.shape}, bias.size={bias.size}"
        )
    mean, sigma = moments[:, 0], moments[:, 1]
    variance = sigma**2 - epsilon
    too_small = variance < -SIGMA_ROUNDING * sigma**2
    if np.any(too_small | ~(sigma > 0)):
        raise ValueError(
            "Every sigma must be positive and at least sqrt(epsilon); "
            "build the backbone with a smaller `batchnorm_epsilon`. "
            f"Received: min(sigma)={sigma.min()!r}, epsilon={epsilon!r}"
        )
    return {
        "gamma": mult,
        "beta": bias,
        "moving_mean": mean,
        "moving_variance": np.maximum(variance, 0.0),
    }


def _matlab_value(parameter, value):
    """`value` shaped as `parameter.shape`, or None if it does not fit."""
    value = np.asarray(value)
    if value.shape == parameter.shape:
        return value
    # MATLAB drops trailing singleton dimensions (a 3x3x8x1 filter is 3x3x8).
    stripped = list(parameter.shape)
    while len(stripped) > 2 and stripped[-1] == 1:
        stripped.pop()
    if value.shape == tuple(stripped):
        return value.reshape(parameter.shape)
    if len(parameter.shape) == 1 and value.size == parameter.shape[0]:
        if max(value.shape, default=1) == value.size:
            return value.reshape(parameter.shape)
    return None


@keras.saving.register_keras_serializable(package="keras_refinenet")
class MatConvNetResNetBackbone(FeaturePyramidBackbone):
    """The Caffe-layout ResNet v1 with MatConvNet's symmetric padding.

    Computes what the RefineNet authors' MatConvNet ResNet computes after
    `fix_padding_resnet`: conv1 7x7 stride 2 pad 3, BatchNorm, ReLU; pool1
    3x3 max stride 2 pad 1 (padded cells never win: the pool follows a
    ReLU, so zero padding equals MatConvNet's clipped window); then
    bottleneck stages `res2`..`res5` whose first block carries the stride
    on its 1x1 `branch2a` and `branch1` convolutions. Every padding is
    explicit and symmetric, `(k - 1) / 2` a side, followed by a "valid"
    convolution or pooling, so each output has `floor((H + 2 * pad - k) /
    stride) + 1` rows for any input size. The convolutions have no bias
    (except conv1 with `conv1_use_bias`) and are followed by a
    BatchNormalization; load MatConvNet's weights with
    `set_matconvnet_weights`.

    `pyramid_outputs` holds `P2`..`P5`, the outputs of `res2`..`res5`
    (strides 4 to 32); the model's output is the last of them.

    Args:
        stackwise_num_blocks: bottleneck blocks per stage: `(3, 4, 6, 3)`
            for ResNet-50, `(3, 4, 23, 3)` for ResNet-101, `(3, 8, 36, 3)`
            for ResNet-152.
        stackwise_num_filters: bottleneck widths per stage; each stage
            outputs 4 times as many channels.
        input_conv_filters: filters of conv1.
        conv1_use_bias: whether conv1 has a bias (`True` for the Caffe
            ResNet-50, `False` for ResNet-101 and -152).
        block_naming: `"auto"`, `"letters"` or `"numbered"`; see
            `stage_block_names`.
        batchnorm_epsilon: epsilon of every BatchNormalization; MatConvNet
            moments map to `moving_variance = sigma**2 - batchnorm_epsilon`
            (`batchnorm_weights_from_moments`).
        image_shape: input shape without the batch size.
        dtype: dtype policy of the model, `None` for the global one.
        **kwargs: `keras.Model` arguments such as `name`.

    Example:

    >>> backbone = MatConvNetResNetBackbone(
    ...     stackwise_num_blocks=(1, 1, 1, 1),
    ...     stackwise_num_filters=(2, 2, 2, 2),
    ...     input_conv_filters=4,
    ... )
    >>> images = np.zeros((1, 45, 61, 3), "float32")
    >>> features = keras.Model(backbone.input, backbone.pyramid_outputs)
    >>> outputs = features(images)
    >>> [tuple(outputs[f"P{i}"].shape[1:3]) for i in range(2, 6)]
    [(12, 16), (6, 8), (3, 4), (2, 2)]
    """

    def __init__(
        self,
        stackwise_num_blocks=MATCONVNET_RESNET_BLOCKS[101],
        stackwise_num_filters=BOTTLENECK_FILTERS,
        input_conv_filters=STEM_FILTERS,
        conv1_use_bias=False,
        block_naming="auto",
        batchnorm_epsilon=BATCHNORM_EPSILON,
        image_shape=(None, None, RGB_CHANNELS),
        dtype=None,
        **kwargs,
    ):
        stackwise_num_blocks = list(stackwise_num_blocks)
        stackwise_num_filters = list(stackwise_num_filters)
        if not stackwise_num_blocks or len(stackwise_num_blocks) != len(
            stackwise_num_filters
        ):
            raise ValueError(
                "`stackwise_num_blocks` and `stackwise_num_filters` must be "
                "non-empty and of the same length. Received: "
                f"stackwise_num_blocks={stackwise_num_blocks}, "
                f"stackwise_num_filters={stackwise_num_filters}"
            )
        for value in stackwise_num_blocks + stackwise_num_filters:
            if not isinstance(value, int) or isinstance(value, bool):
                value = 0
            if value < 1:
                raise ValueError(
                    "Block counts and filters must be positive integers. "
                    f"Received: stackwise_num_blocks={stackwise_num_blocks}, "
                    f"stackwise_num_filters={stackwise_num_filters}"
                )
        if not batchnorm_epsilon > 0:
            raise ValueError(
                "`batchnorm_epsilon` must be positive. "
                f"Received: batchnorm_epsilon={batchnorm_epsilon!r}"
            )
        stages = stage_block_names(stackwise_num_blocks, block_naming)

        def conv_bn(x, conv_name, bn_name, filters, kernel_size, **options):
            pad = (kernel_size - 1) // 2
            if pad:
                x = keras.layers.ZeroPadding2D(
                    pad, dtype=dtype, name=f"{conv_name}_pad"
                )(x)
            x = keras.layers.Conv2D(
                filters,
                kernel_size,
                padding="valid",
                dtype=dtype,
                name=conv_name,
                **{"use_bias": False, **options},
            )(x)
            return keras.layers.BatchNormalization(
                epsilon=batchnorm_epsilon,
                momentum=BATCHNORM_MOMENTUM,
                dtype=dtype,
                name=bn_name,
            )(x)

        def relu(x, name):
            return keras.layers.ReLU(dtype=dtype, name=name)(x)

        # === Functional Model ===
        # Images arrive in the variable dtype (float64 stays float64).
        input_dtype = None
        if dtype is not None:
            input_dtype = keras.dtype_policies.get(dtype).variable_dtype
        image_input = keras.layers.Input(shape=image_shape, dtype=input_dtype)
        x = conv_bn(
            image_input,
            "conv1",
            "bn_conv1",
            input_conv_filters,
            STEM_KERNEL_SIZE,
            strides=DOWNSAMPLING_STRIDE,
            use_bias=conv1_use_bias,
        )
        x = relu(x, "conv1_relu")
        x = keras.layers.ZeroPadding2D(
            (POOL_SIZE - 1) // 2, dtype=dtype, name="pool1_pad"
        )(x)
        x = keras.layers.MaxPooling2D(
            POOL_SIZE,
            strides=DOWNSAMPLING_STRIDE,
            padding="valid",
            dtype=dtype,
            name="pool1",
        )(x)
        pyramid_outputs = {}
        for stage_index, (blocks, filters) in enumerate(
            zip(stages, stackwise_num_filters)
        ):
            for block_index, block in enumerate(blocks):
                stride = (
                    DOWNSAMPLING_STRIDE
                    if block_index == 0 and stage_index > 0
                    else 1
                )
                shortcut = x
                if block_index == 0:
                    shortcut = conv_bn(
                        x,
                        f"res{block}_branch1",
                        f"bn{block}_branch1",
                        filters * BOTTLENECK_EXPANSION,
                        1,
                        strides=stride,
                    )
                y = conv_bn(
                    x,
                    f"res{block}_branch2a",
                    f"bn{block}_branch2a",
                    filters,
                    1,
                    strides=stride,
                )
                y = relu(y, f"res{block}_branch2a_relu")
                y = conv_bn(
                    y,
                    f"res{block}_branch2b",
                    f"bn{block}_branch2b",
                    filters,
                    BOTTLENECK_KERNEL_SIZE,
                )
                y = relu(y, f"res{block}_branch2b_relu")
                y = conv_bn(
                    y,
                    f"res{block}_branch2c",
                    f"bn{block}_branch2c",
                    filters * BOTTLENECK_EXPANSION,
                    1,
                )
                x = keras.layers.Add(dtype=dtype, name=f"res{block}")(
                    [shortcut, y]
                )
                x = relu(x, f"res{block}_relu")
            pyramid_outputs[f"P{stage_index + FIRST_STAGE}"] = x

        super().__init__(inputs=image_input, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.stackwise_num_blocks = stackwise_num_blocks
        self.stackwise_num_filters = stackwise_num_filters
        self.input_conv_filters = input_conv_filters
        self.conv1_use_bias = conv1_use_bias
        self.block_naming = block_naming
        self.batchnorm_epsilon = batchnorm_epsilon
        self.image_shape = image_shape
        self.pyramid_outputs = pyramid_outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "stackwise_num_blocks": self.stackwise_num_blocks,
                "stackwise_num_filters": self.stackwise_num_filters,
                "input_conv_filters": self.input_conv_filters,
                "conv1_use_bias": self.conv1_use_bias,
                "block_naming": self.block_naming,
                "batchnorm_epsilon": self.batchnorm_epsilon,
                "image_shape": self.image_shape,
            }
        )
        return config

    def matconvnet_parameters(self):
        """The MATLAB parameters this backbone's weights correspond to.

        Returns:
            A list of `MatConvNetParameter`, in network order.

        Example:

        >>> backbone = MatConvNetResNetBackbone(
        ...     stackwise_num_blocks=(1, 1, 1, 1),
        ...     stackwise_num_filters=(2, 2, 2, 2),
        ...     input_conv_filters=4,
        ... )
        >>> backbone.matconvnet_parameters()[0].shape
        (7, 7, 3, 4)
        """
        return _parameter_table(
            self.stackwise_num_blocks,
            self.stackwise_num_filters,
            self.input_conv_filters,
            self.conv1_use_bias,
            self.block_naming,
            self.image_shape[-1],
        )


def matconvnet_resnet_backbone(depth=101, **kwargs):
    """The backbone of `imagenet-resnet-{depth}-dag`, randomly initialised.

    Args:
        depth: 50, 101 or 152.
        **kwargs: other `MatConvNetResNetBackbone` arguments.

    Returns:
        A `MatConvNetResNetBackbone`.

    Example:

    >>> matconvnet_resnet_backbone(50).get_layer("res4f_branch2c").name
    'res4f_branch2c'
    """
    return MatConvNetResNetBackbone(
        **{**matconvnet_resnet_config(depth), **kwargs}
    )


def set_matconvnet_weights(backbone, parameters, table=None):
    """Loads MatConvNet parameters into a `MatConvNetResNetBackbone`.

    Checks the whole file first and loads nothing unless every expected
    parameter is there with its MATLAB size and no other is.

    Args:
        backbone: a `MatConvNetResNetBackbone`.
        parameters: a mapping from MATLAB parameter name to its array in
            MATLAB's dimension order (as `scipy.io.loadmat` returns it;
            h5py returns the dimensions reversed, undo that with `.T`).
        table: the `MatConvNetParameter` list to load, by default
            `backbone.matconvnet_parameters()`; give it when `backbone` is
            a model holding the backbone's layers (e.g. the cut image
            encoder of a `RefineNetBackbone`).

    Returns:
        The backbone.

    Example:

    >>> backbone = MatConvNetResNetBackbone(
    ...     stackwise_num_blocks=(1,),
    ...     stackwise_num_filters=(2,),
    ...     input_conv_filters=4,
    ... )
    >>> parameters = {
    ...     p.name: np.ones(p.shape) for p in backbone.matconvnet_parameters()
    ... }
    >>> _ = set_matconvnet_weights(backbone, parameters)
    >>> round(float(backbone.get_layer("bn_conv1").moving_variance[0]), 6)
    0.99999
    """
    if table is None:
        table = backbone.matconvnet_parameters()
    expected = {parameter.name for parameter in table}
    differences = [
        f"missing {p.name} {p.shape}" for p in table if p.name not in parameters
    ]
    differences += [
        f"unexpected {name}" for name in parameters if name not in expected
    ]
    values = {}
    for parameter in table:
        if parameter.name not in parameters:
            continue
        value = _matlab_value(parameter, parameters[parameter.name])
        if value is None:
            shape = np.shape(parameters[parameter.name])
            differences.append(
                f"{parameter.name} has size {shape}, expected {parameter.shape}"
            )
        values[parameter.name] = value
    if differences:
        listed = "; ".join(differences[:MAX_LISTED_DIFFERENCES])
        raise ValueError(
            "The parameters do not match the backbone "
            f"({len(differences)} differences, nothing loaded): {listed}. "
            f"Received: {len(parameters)} parameters"
        )
    assignments = []
    batchnorm_weights = {}
    for parameter in table:
        layer = backbone.get_layer(parameter.layer)
        if isinstance(layer, keras.layers.BatchNormalization):
            prefix = parameter.layer
            if prefix not in batchnorm_weights:
                batchnorm_weights[prefix] = batchnorm_weights_from_moments(
                    values[f"{prefix}_mult"],
                    values[f"{prefix}_bias"],
                    values[f"{prefix}_moments"],
                    epsilon=layer.epsilon,
                )
            weights = batchnorm_weights[prefix]
        else:
            weights = {parameter.weights[0]: values[parameter.name]}
        variables = {variable.name: variable for variable in layer.weights}
        for weight in parameter.weights:
            assignments.append((variables[weight], weights[weight]))
    for variable, value in assignments:
        variable.assign(np.asarray(value, variable.dtype))
    return backbone
