"""The authors' MatConvNet RefineNet models (`.mat`) -> `RefineNet`.

The MatConvNet release (guosheng/refinenet) builds RefineNet on the
original Caffe ResNet (stride on the first 1x1 convolution of a
bottleneck), the layout of keras-cv's ResNet v1, and uses the "improved"
chained residual pooling (convolution before pooling).

The file is read with `scipy.io.loadmat` as plain arrays (no code runs):
a struct `net` (or the top level) with a `params` struct array of `name`
and `value`, as `dagnn.DagNN.saveobj` writes it. MATLAB v7.3 files (HDF5)
and MATLAB objects cannot be read this way; re-save the DagNN's `params`
with `save(file, 'net', '-v7')` where `net.params = dag.params`.

Parameter names:
- backbone: the MatConvNet/Caffe ResNet names, `conv1_filter`,
  `bn_conv1_{mult,bias,moments}`, `res4b22_branch2a_filter`,
  `bn4b22_branch2a_moments`, ... (`moments` holds mean and sigma =
  sqrt(variance + epsilon) per channel).
- decoder: the key of the authors' PyTorch port with its `.0.` container
  level dropped and dots as underscores, plus `_filter`/`_bias`
  (`adapt_stage1_b_1_conv_filter`, `mflow_conv_g1_pool_1_outvar_dimred_filter`,
  `clf_conv_filter`). This naming is inferred from the PyTorch port, not
  checked against a released file; the converter lists every name it does
  not find, so a file with other names is refused, never half-converted.

Exactness: the weights are mapped exactly (filters are HWIO in
MatConvNet as in Keras; BatchNorm sigma -> variance = sigma^2 - epsilon).
The first convolution is padded by 3 on every side in MatConvNet and
"same" in keras-cv: identical when height and width are 1 modulo 4, a
one-pixel shift of the stem otherwise, which changes the logits near the
image border only.
"""

import os

import numpy as np

from keras_refinenet.convert.checkpoints import (
    CheckpointMismatchError,
    check_state_dict,
)
from keras_refinenet.convert.refinenet_pytorch import decoder_pairs
from keras_refinenet.models.encoders.pyramid import resnet_backbone
from keras_refinenet.models.presets import (
    MATCONVNET_ARCHITECTURE,
    MATCONVNET_NORMALIZATION,
)
from keras_refinenet.models.refinenet import RefineNet

AVERAGE_IMAGE_KEY = "averageImage"
FILTER_SUFFIX = "_filter"
BIAS_SUFFIX = "_bias"
BN_SUFFIXES = ("_mult", "_bias", "_moments")
# keras-cv branch index -> Caffe branch name.
CAFFE_BRANCHES = {0: "branch1", 1: "branch2a", 2: "branch2b", 3: "branch2c"}
FIRST_CAFFE_STAGE = 2
# Stages whose blocks are named a, b1, b2, ... in Caffe ResNet-101/152.
NUMBERED_STAGES = (3, 4)
LETTERED_DEPTHS = (50,)


def caffe_block_name(stage, block, depth):
    """Caffe ResNet block name: `a`, `b`, ... or `a`, `b1`, `b2`, ...

    Args:
        stage: Caffe stage, 2 to 5.
        block: block index within the stage, from 0.
        depth: ResNet depth.

    Example:

    >>> caffe_block_name(4, 22, 101), caffe_block_name(4, 2, 50)
    ('b22', 'c')
    """
    if block == 0:
        return "a"
    if depth not in LETTERED_DEPTHS and stage in NUMBERED_STAGES:
        return f"b{block}"
    return chr(ord("a") + block)


def backbone_param_names(backbone, depth, stackwise_blocks=None):
    """`(keras_layer, caffe_conv_name, caffe_bn_name)` for a keras-cv ResNet.

    Args:
        backbone: the ResNet, or a model holding its layers (the cut
            `RefineNetBackbone.image_encoder`).
        depth: ResNet depth.
        stackwise_blocks: blocks per stage; read from `backbone` if `None`.
    """
    triples = [
        (
            backbone.get_layer("conv1_conv"),
            backbone.get_layer("conv1_bn"),
            "conv1",
            "bn_conv1",
        )
    ]
    if stackwise_blocks is None:
        stackwise_blocks = backbone.stackwise_blocks
    for stack, blocks in enumerate(stackwise_blocks):
        stage = stack + FIRST_CAFFE_STAGE
        for block in range(blocks):
            caffe = caffe_block_name(stage, block, depth)
            for branch, branch_name in CAFFE_BRANCHES.items():
                if branch == 0 and block > 0:
                    continue
                prefix = f"v2_stack_{stack}_block{block + 1}_{branch}"
                triples.append(
                    (
                        backbone.get_layer(f"{prefix}_conv"),
                        backbone.get_layer(f"{prefix}_bn"),
                        f"res{stage}{caffe}_{branch_name}",
                        f"bn{stage}{caffe}_{branch_name}",
                    )
                )
    return triples


def decoder_param_name(torch_prefix):
    """`adapt_stage1_b.0.1_conv` -> `adapt_stage1_b_1_conv`."""
    return torch_prefix.replace(".0.", "_").replace(".", "_")


def load_matconvnet_params(path):
    """Reads a DagNN `.mat` file's parameters as plain float32 arrays.

    Args:
        path: the `.mat` file (MATLAB v7 or earlier).

    Returns:
        A dict from parameter name to `np.ndarray`, plus the image mean
        under `"averageImage"` when the file's `meta.normalization` has it.
    """
    import scipy.io

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No MatConvNet file at {path}. Received: path={path!r}"
        )
    try:
        contents = scipy.io.loadmat(path)
    except NotImplementedError as error:
        raise ValueError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which cannot be read as "
            "plain arrays. In MATLAB, save the DagNN parameters with "
            "`net.params = dag.params; save(file, 'net', '-v7')`."
        ) from error
    net = contents.get("net", contents)
    params = _field(net, "params", path)
    arrays = {}
    for param in np.ravel(params):
        name = str(_field(param, "name", path))
        arrays[name] = np.asarray(_field(param, "value", path), "float32")
    average_image = _optional_average_image(net)
    if average_image is not None:
        arrays[AVERAGE_IMAGE_KEY] = average_image
    return arrays


def _field(struct, name, path):
    """A field of a loadmat struct (a dict or a structured array)."""
    struct = _unwrap(struct)
    if isinstance(struct, dict) and name in struct:
        return _unwrap(struct[name])
    names = getattr(getattr(struct, "dtype", None), "names", None) or ()
    if name in names:
        return _unwrap(struct[name])
    raise CheckpointMismatchError(
        f"{path} has no `{name}` field where a DagNN file has one; it is "
        "not a MatConvNet DagNN model saved as plain arrays."
    )


def _unwrap(value):
    """Removes MATLAB's 1x1 cell/struct wrapping and char-array boxing."""
    while (
        isinstance(value, np.ndarray)
        and value.size == 1
        and (value.dtype == object or value.dtype.names)
    ):
        value = value.reshape(-1)[0]
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        return str(value.reshape(-1)[0]) if value.size else ""
    return value


def _match_matlab_shapes(params, expected):
    """MATLAB drops trailing singleton dimensions and keeps vectors 2-D:
    reshape arrays whose squeezed shapes agree with the expected ones."""
    for name, shape in expected.items():
        value = params.get(name)
        if value is None or tuple(value.shape) == tuple(shape):
            continue
        if np.squeeze(value).shape == np.squeeze(np.empty(shape)).shape:
            params[name] = value.reshape(shape)


def _optional_average_image(net):
    try:
        meta = _field(net, "meta", "")
        normalization = _field(meta, "normalization", "")
        return np.asarray(_field(normalization, "averageImage", ""), "float32")
    except CheckpointMismatchError:
        return None


def _conv_shapes(name, layer):
    shapes = {name + FILTER_SUFFIX: tuple(layer.kernel.shape)}
    if layer.use_bias:
        shapes[name + BIAS_SUFFIX] = tuple(layer.bias.shape)
    return shapes


def _set_batchnorm(layer, params, name):
    sigma = params[name + "_moments"][:, 1]
    variance = sigma.astype("float64") ** 2 - layer.epsilon
    if np.any(variance < 0):
        raise CheckpointMismatchError(
            f"{name}_moments has sigma below sqrt(epsilon={layer.epsilon}); "
            "Keras cannot reproduce it. "
            f"Received: min sigma={sigma.min()}"
        )
    layer.set_weights(
        [
            params[name + "_mult"],
            params[name + "_bias"],
            params[name + "_moments"][:, 0],
            variance.astype("float32"),
        ]
    )


def _set_conv(layer, params, name):
    weights = [params[name + FILTER_SUFFIX]]
    if layer.use_bias:
        weights.append(params[name + BIAS_SUFFIX])
    layer.set_weights(weights)


def matconvnet_refinenet(depth, num_classes, **kwargs):
    """A randomly initialised RefineNet in the MatConvNet layout."""
    config = {**MATCONVNET_NORMALIZATION, **MATCONVNET_ARCHITECTURE}
    config.update(kwargs)
    return RefineNet(
        resnet_backbone(depth, library="keras_cv"),
        num_classes=num_classes,
        **config,
    )


def _encoder_param_names(model, depth):
    backbone = model.backbone
    return backbone_param_names(
        backbone.image_encoder,
        depth,
        backbone.image_encoder_arguments["stackwise_blocks"],
    )


def expected_params(model, depth):
    """Parameter name -> shape that `convert_matconvnet` needs."""
    shapes = {}
    for conv, bn, conv_name, bn_name in _encoder_param_names(model, depth):
        shapes.update(_conv_shapes(conv_name, conv))
        channels = bn.gamma.shape[0]
        shapes.update(
            {
                bn_name + "_mult": (channels,),
                bn_name + "_bias": (channels,),
                bn_name + "_moments": (channels, 2),
            }
        )
    for layer, prefix in decoder_pairs(model):
        shapes.update(_conv_shapes(decoder_param_name(prefix), layer))
    return shapes


def convert_matconvnet(params_or_path, depth=101, num_classes=None, **kwargs):
    """Converts a MatConvNet RefineNet to a `RefineNet`.

    Args:
        params_or_path: a `.mat` path or the dict of
            `load_matconvnet_params`.
        depth: ResNet depth of the model.
        num_classes: classes; read from `clf_conv_filter` when `None`.
        **kwargs: more `RefineNet` arguments.

    Returns:
        The converted `RefineNet` (keras-cv backbone, Caffe layout).

    Example:

    >>> path = "refinenet_res101_cityscapes.mat"
    >>> model = convert_matconvnet(path)  # doctest: +SKIP
    """
    params = (
        dict(params_or_path)
        if isinstance(params_or_path, dict)
        else load_matconvnet_params(params_or_path)
    )
    average_image = params.pop(AVERAGE_IMAGE_KEY, None)
    if average_image is not None and "image_mean" not in kwargs:
        kwargs["image_mean"] = [float(v) for v in np.ravel(average_image)]
    if num_classes is None:
        classifier = params.get("clf_conv" + FILTER_SUFFIX)
        if classifier is None:
            raise CheckpointMismatchError(
                "The MatConvNet file has no `clf_conv_filter`. First "
                f"names: {list(params)[:5]}"
            )
        num_classes = int(classifier.shape[-1])
    model = matconvnet_refinenet(depth, num_classes, **kwargs)
    expected = expected_params(model, depth)
    _match_matlab_shapes(params, expected)
    check_state_dict(params, expected, f"MatConvNet RefineNet-{depth}")
    for conv, bn, conv_name, bn_name in _encoder_param_names(model, depth):
        _set_conv(conv, params, conv_name)
        _set_batchnorm(bn, params, bn_name)
    for layer, prefix in decoder_pairs(model):
        _set_conv(layer, params, decoder_param_name(prefix))
    return model


__all__ = [
    "convert_matconvnet",
    "load_matconvnet_params",
    "matconvnet_refinenet",
]
