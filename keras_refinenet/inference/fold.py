"""Inference-time folding of BatchNorm into the preceding convolutions.

A `Conv2D` whose output feeds only a channels-last `BatchNormalization`
computes, at inference, `scale * (conv(x) + bias - mean) + beta` with
`scale = gamma / sqrt(variance + epsilon)`: one convolution with the kernel
scaled per output channel and a new bias. `fold_batch_normalization`
rebuilds a model's graph (nested functional models included) with every
such pair replaced by that convolution; the other layers are shared with
the original model. `inference_network(model, winograd=True)` also
computes every 3x3 stride-1 convolution (image encoder and decoder) with a
`TransformedWinogradConv2D`, its kernel transformed once.
"""

import contextlib

import keras
import numpy as np

# Keras has no public type for graph (functional) models.
from keras.src.models.functional import Functional

from keras_refinenet.layers.chained_residual_pooling import (
    ChainedResidualPooling,
    SeparableMaxPooling2D,
)
from keras_refinenet.layers.winograd_conv import (
    TransformedWinogradConv2D,
    WinogradConv2D,
    is_winograd_eligible,
)

CHANNELS_LAST_AXES = (-1, 3)
# Below this many input channels oneDNN's direct 3x3 convolutions beat
# Winograd F(4x4, 3x3) (AMX Xeon, float32: 64 channels at 128x256 0.51x,
# 128 at 64x128 0.87x, 256 at 32x64 1.13x, 256 at 128x256 1.19x).
WINOGRAD_MIN_CHANNELS = 256


def fold_batch_normalization(model):
    """An inference copy of `model` with BatchNorm folded into its convs.

    Only the graph is rebuilt: layers that are not folded are shared with
    `model` (same weights), folded convolutions are new `Conv2D`s (or the
    same class, e.g. `WinogradConv2D`) with the scaled kernel and a bias.
    The result is a plain `keras.Model` for inference (`training=False`);
    it does not apply a task's preprocessor (call `model.preprocess`
    first) and does not follow later weight changes of `model`.

    Args:
        model: a functional Keras model (e.g. `RefineNet`).

    Returns:
        A `keras.Model` with the same inputs and outputs.

    Example:

    >>> import keras
    >>> inputs = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, use_bias=False)(inputs)
    >>> x = keras.layers.BatchNormalization()(x)
    >>> folded = fold_batch_normalization(keras.Model(inputs, x))
    >>> [type(layer).__name__ for layer in folded.layers]
    ['InputLayer', 'Conv2D']
    """
    return inference_network(model)


def inference_network(
    model,
    fold_batchnorm=True,
    winograd=False,
    compute_dtype_weights=False,
    zero_biases=False,
    separable_pooling=False,
):
    """An inference copy of `model`'s graph with faster equivalent layers.

    Args:
        model: a functional Keras model (e.g. `RefineNet`).
        fold_batchnorm: fold every `Conv2D -> BatchNormalization` pair
            into one convolution (see `fold_batch_normalization`).
        winograd: compute every 3x3, stride-1, 'same' convolution (image
            encoder and decoder, folded ones included) with at least
            `WINOGRAD_MIN_CHANNELS` input channels, and every
            `WinogradConv2D`, with a `TransformedWinogradConv2D` F(4x4,
            3x3) whose kernel is transformed once (exact to float32
            round-off).
        compute_dtype_weights: give layers of a mixed policy (e.g.
            `"mixed_bfloat16"`) their weights in the compute dtype, so a
            forward pass casts no weights (the values are the ones the
            mixed layers cast to).
        zero_biases: give every bias-less `Conv2D` a zero bias (the same
            outputs), so oneDNN fuses it with the add or ReLU after it;
            trace the network inside `relu_as_maximum()`
            (`keras_refinenet.layers.utils`).
        separable_pooling: chained residual poolings pool with a
            `SeparableMaxPooling2D` (the same values).

    Returns:
        A `keras.Model` with the same inputs and outputs; layers that are
        not replaced are shared with `model`.

    Example:

    >>> import keras
    >>> inputs = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    >>> network = inference_network(keras.Model(inputs, x), winograd=True)
    >>> [type(layer).__name__ for layer in network.layers]
    ['InputLayer', 'Conv2D']
    >>> wide = keras.Input((8, 8, WINOGRAD_MIN_CHANNELS))
    >>> x = keras.layers.Conv2D(4, 3, padding="same")(wide)
    >>> network = inference_network(keras.Model(wide, x), winograd=True)
    >>> [type(layer).__name__ for layer in network.layers]
    ['InputLayer', 'TransformedWinogradConv2D']
    """
    if not isinstance(model, Functional):
        raise ValueError(
            "`inference_network` needs a functional Keras model. "
            f"Received: model={type(model).__name__}"
        )
    options = {
        "fold_batchnorm": fold_batchnorm,
        "winograd": winograd,
        "compute_dtype_weights": compute_dtype_weights,
        "zero_biases": zero_biases,
        "separable_pooling": separable_pooling,
    }
    return _fold(model, {}, options)


def count_batch_normalizations(model):
    """The `BatchNormalization` layers in `model`, nested ones included.

    Example:

    >>> import keras
    >>> count_batch_normalizations(keras.Sequential(
    ...     [keras.Input((4,)), keras.layers.BatchNormalization()]))
    1
    """
    return sum(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in model._flatten_layers(include_self=False)
    )


def _nodes(functional):
    depths = sorted(functional._nodes_by_depth, reverse=True)
    return [
        node
        for depth in depths
        for node in functional._nodes_by_depth[depth]
        if node.operation is not None and not node.is_input
    ]


def _producer(graph_nodes, tensor):
    """The node among `graph_nodes` that computes `tensor`, or `None`."""
    operation, node_index, _ = tensor._keras_history
    node = operation._inbound_nodes[node_index]
    return node if node in graph_nodes else None


def _foldable_convs(functional, nodes):
    """`{id(batch norm node): conv node}` for the pairs to fold."""
    uses = {}
    for node in nodes:
        for tensor in node.input_tensors:
            uses[id(tensor)] = uses.get(id(tensor), 0) + 1
    for tensor in functional.outputs:
        uses[id(tensor)] = uses.get(id(tensor), 0) + 1
    graph_nodes = {
        node for group in functional._nodes_by_depth.values() for node in group
    }
    pairs = {}
    for node in nodes:
        norm = node.operation
        if not isinstance(norm, keras.layers.BatchNormalization):
            continue
        # Symbolic calls record `mask=None`; any set argument keeps the pair.
        if norm.axis not in CHANNELS_LAST_AXES or any(
            value is not None for value in node.arguments.kwargs.values()
        ):
            continue
        if len(node.input_tensors) != 1:
            continue
        tensor = node.input_tensors[0]
        producer = _producer(graph_nodes, tensor)
        if producer is None or uses[id(tensor)] != 1:
            continue
        conv = producer.operation
        if (
            isinstance(conv, keras.layers.Conv2D)
            and conv.data_format == "channels_last"
            and conv.activation is keras.activations.linear
            and len(producer.input_tensors) == 1
        ):
            pairs[id(node)] = producer
    return pairs


def _compute_dtype_policy(layer):
    """`layer`'s compute dtype as a policy if its weights are kept in
    another dtype (a mixed policy), else `None`."""
    policy = layer.dtype_policy
    if policy.compute_dtype == policy.variable_dtype:
        return None
    return keras.dtype_policies.get(policy.compute_dtype)


def _folded_conv(
    conv, norm, input_shape, winograd=False, compute_dtype_weights=False
):
    """A new convolution computing `norm(conv(x))` at inference."""
    kernel = np.asarray(conv.kernel, "float64")
    channels = kernel.shape[-1]
    bias = np.asarray(conv.bias, "float64") if conv.use_bias else 0.0
    gamma = np.asarray(norm.gamma, "float64") if norm.scale else 1.0
    beta = np.asarray(norm.beta, "float64") if norm.center else 0.0
    mean = np.asarray(norm.moving_mean, "float64")
    variance = np.asarray(norm.moving_variance, "float64")
    scale = gamma / np.sqrt(variance + norm.epsilon) * np.ones(channels)
    kernel, bias = kernel * scale, (bias - mean) * scale + beta
    if winograd and _winograd_pays(conv, input_shape):
        return TransformedWinogradConv2D.from_conv(
            conv, input_shape, kernel=kernel, bias=bias
        )
    config = {**conv.get_config(), "use_bias": True}
    policy = _compute_dtype_policy(conv) if compute_dtype_weights else None
    if policy is not None:
        config["dtype"] = policy
    folded = type(conv).from_config(config)
    folded.build(input_shape)
    folded.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return folded


def _winograd_pays(conv, input_shape):
    """Whether the inference network computes `conv` with Winograd: a
    `WinogradConv2D` (the model's choice) or an eligible convolution with
    at least `WINOGRAD_MIN_CHANNELS` input channels."""
    if not is_winograd_eligible(conv):
        return False
    channels = input_shape[-1]
    return isinstance(conv, WinogradConv2D) or (
        channels is not None and channels >= WINOGRAD_MIN_CHANNELS
    )


def _replaceable(node):
    """Whether `node` calls a conv Winograd pays for on one input."""
    return (
        len(node.input_tensors) == 1
        and _winograd_pays(node.operation, node.input_tensors[0].shape)
        and not any(v is not None for v in node.arguments.kwargs.values())
    )


def _biasless_convs(layer):
    """The plain `Conv2D`s without a bias in `layer`, itself included."""
    return [
        conv
        for conv in layer._flatten_layers(include_self=True)
        if type(conv) is keras.layers.Conv2D and not conv.use_bias
    ]


@contextlib.contextmanager
def _unlocked_state(layer):
    """Lets the built `layer` (an inference copy's own) take new state."""
    # Keras locks a built layer's state; the copy is the network's own.
    layer._tracker.unlock()
    try:
        yield
    finally:
        layer._tracker.lock()


def _add_zero_bias(conv):
    """Gives the built, bias-less `conv` a zero bias (the same outputs)."""
    with _unlocked_state(conv):
        conv.bias = conv.add_weight(
            name="bias", shape=(conv.filters,), initializer="zeros"
        )
    conv.use_bias = True


def _square_poolings(layer):
    """The chained residual poolings in `layer` (itself included) that
    still pool with a `MaxPooling2D`."""
    return [
        crp
        for crp in layer._flatten_layers(include_self=True)
        if isinstance(crp, ChainedResidualPooling)
        and type(crp.pool) is keras.layers.MaxPooling2D
    ]


def _separate_pooling(crp):
    """`crp` pools with a `SeparableMaxPooling2D` (the same values)."""
    with _unlocked_state(crp):
        crp.pool = SeparableMaxPooling2D(
            crp.pool_size, dtype=crp.dtype_policy, name="separable_pool"
        )


def _inference_copy(layer, args, kwargs, options):
    """`layer` rebuilt (built by a call on `args`) with its weights in its
    compute dtype, zero biases and separable poolings as `options` ask, or
    `layer` itself if nothing changes."""
    policy = None
    if options["compute_dtype_weights"]:
        policy = _compute_dtype_policy(layer)
    biasless = options["zero_biases"] and _biasless_convs(layer)
    pools = options["separable_pooling"] and _square_poolings(layer)
    if policy is None and not biasless and not pools:
        return layer
    config = layer.get_config()
    if policy is not None:
        config["dtype"] = policy
    copy = type(layer).from_config(config)
    copy(*args, **kwargs)
    copy.set_weights(layer.get_weights())
    if biasless:
        for conv in _biasless_convs(copy):
            _add_zero_bias(conv)
    if pools:
        for crp in _square_poolings(copy):
            _separate_pooling(crp)
    return copy


def _fold(functional, memo, options):
    """`functional`'s graph rebuilt with folded pairs (memoized)."""
    if id(functional) in memo:
        return memo[id(functional)]
    nodes = _nodes(functional)
    pairs = {}
    if options["fold_batchnorm"]:
        pairs = _foldable_convs(functional, nodes)
    skipped = {id(conv_node) for conv_node in pairs.values()}
    inputs = [
        keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype)
        for tensor in functional.inputs
    ]
    tensors = {id(old): new for old, new in zip(functional.inputs, inputs)}
    for node in nodes:
        if id(node) in skipped:
            continue
        if id(node) in pairs:
            conv_node = pairs[id(node)]
            (source,) = conv_node.input_tensors
            conv = _folded_conv(
                conv_node.operation,
                node.operation,
                source.shape,
                options["winograd"],
                options["compute_dtype_weights"],
            )
            outputs = conv(tensors[id(source)])
        else:
            args, kwargs = node.arguments.fill_in(tensors)
            operation = node.operation
            if isinstance(operation, Functional):
                operation = _fold(operation, memo, options)
            elif options["winograd"] and _replaceable(node):
                (source,) = node.input_tensors
                operation = TransformedWinogradConv2D.from_conv(
                    operation, source.shape
                )
            elif getattr(operation, "weights", None):
                operation = _inference_copy(operation, args, kwargs, options)
            outputs = operation(*args, **kwargs)
        for old, new in zip(node.outputs, keras.tree.flatten(outputs)):
            tensors[id(old)] = new
    outputs = keras.tree.pack_sequence_as(
        functional._outputs_struct,
        [tensors[id(tensor)] for tensor in functional.outputs],
    )
    inputs = keras.tree.pack_sequence_as(functional._inputs_struct, inputs)
    folded = keras.Model(inputs, outputs, name=functional.name)
    memo[id(functional)] = folded
    return folded
