"""Inference-time folding of BatchNorm into the preceding convolutions.

A `Conv2D` whose output feeds only a channels-last `BatchNormalization`
computes, at inference, `scale * (conv(x) + bias - mean) + beta` with
`scale = gamma / sqrt(variance + epsilon)`: one convolution with the kernel
scaled per output channel and a new bias. `fold_batch_normalization`
rebuilds a model's graph (nested functional models included) with every
such pair replaced by that convolution; the other layers are shared with
the original model.
"""

import keras
import numpy as np

# Keras has no public type for graph (functional) models.
from keras.src.models.functional import Functional

CHANNELS_LAST_AXES = (-1, 3)


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
    if not isinstance(model, Functional):
        raise ValueError(
            "`fold_batch_normalization` needs a functional Keras model. "
            f"Received: model={type(model).__name__}"
        )
    return _fold(model, {})


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


def _folded_conv(conv, norm, input_shape):
    """A new convolution computing `norm(conv(x))` at inference."""
    kernel = np.asarray(conv.kernel, "float64")
    channels = kernel.shape[-1]
    bias = np.asarray(conv.bias, "float64") if conv.use_bias else 0.0
    gamma = np.asarray(norm.gamma, "float64") if norm.scale else 1.0
    beta = np.asarray(norm.beta, "float64") if norm.center else 0.0
    mean = np.asarray(norm.moving_mean, "float64")
    variance = np.asarray(norm.moving_variance, "float64")
    scale = gamma / np.sqrt(variance + norm.epsilon) * np.ones(channels)
    config = {**conv.get_config(), "use_bias": True}
    folded = type(conv).from_config(config)
    folded.build(input_shape)
    folded.set_weights(
        [
            (kernel * scale).astype("float32"),
            ((bias - mean) * scale + beta).astype("float32"),
        ]
    )
    return folded


def _fold(functional, memo):
    """`functional`'s graph rebuilt with folded pairs (memoized)."""
    if id(functional) in memo:
        return memo[id(functional)]
    nodes = _nodes(functional)
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
                conv_node.operation, node.operation, source.shape
            )
            outputs = conv(tensors[id(source)])
        else:
            args, kwargs = node.arguments.fill_in(tensors)
            operation = node.operation
            if isinstance(operation, Functional):
                operation = _fold(operation, memo)
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
