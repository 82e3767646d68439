"""The forward pass of `predict_segmentation` and the CLI: compiled, in a
chosen precision, with BatchNorm folded into the convolutions.

`inference_forward(model)` returns a callable mapping raw 0..255 tiles to
numpy logits through Keras's compiled predict function
(`predict_on_batch`, traced inside `inference_tracing`), so
repeated calls cost the graph alone. Networks
that copy weights (folded BatchNorm, another precision) are cached per
model and rebuilt when the model's weights change. For a single view
(no tiling, scales or flips), `CompiledForward.channels` returns the class
channel of every pixel from one compiled call that also resizes the logits
and takes the argmax, so no full-size probabilities reach the host.
"""

import contextlib
import functools
import weakref

import keras
import numpy as np

from keras_refinenet.constants import (
    AUTO_DECODER_CONV,
    DIRECT_CONV,
    INFERENCE_DECODER_CONVS,
    WINOGRAD_CONV,
)
from keras_refinenet.constants import INFERENCE_PRECISIONS as PRECISIONS
from keras_refinenet.inference.fold import inference_network
from keras_refinenet.inference.process_settings import (
    ONEDNN_VARIABLE,
    variable_on,
)
from keras_refinenet.layers.resize import ResizeLike, native_resize
from keras_refinenet.layers.utils import relu_as_maximum
from keras_refinenet.layers.winograd_conv import WinogradConv2D

FLOAT32, BFLOAT16 = PRECISIONS
PRECISION_POLICIES = {FLOAT32: "float32", BFLOAT16: "mixed_bfloat16"}
# Folding is exact up to float32 round-off (tested within 1e-4).
DEFAULT_FOLD_BATCHNORM = True
_NETWORKS = weakref.WeakKeyDictionary()
FINGERPRINT_KEY = "fingerprint"
FINGERPRINT_VALUE_KEY = "fingerprint_value"
WATCH_KEY = "weight_watch"
# The smallest view measured faster with the Winograd decoder (256x512:
# 2.3x on an Intel Xeon, 1.25x at 512x1024 on an AMD EPYC; see
# `benchmarks/README.md`); smaller views keep the model's convolutions.
WINOGRAD_MIN_PIXELS = 256 * 512


def check_precision(precision):
    """Raises a `ValueError` unless `precision` is in `PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"`precision` must be one of {PRECISIONS}. "
            f"Received: precision={precision!r}"
        )


def check_decoder_conv(decoder_conv):
    """Raises a `ValueError` unless `decoder_conv` is an inference choice."""
    if decoder_conv not in INFERENCE_DECODER_CONVS:
        raise ValueError(
            f"`decoder_conv` must be one of {INFERENCE_DECODER_CONVS}. "
            f"Received: decoder_conv={decoder_conv!r}"
        )


@functools.cache
def _accelerator_present():
    """Whether the backend computes on a GPU or another accelerator (asked
    once per process: devices do not come and go)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.default_backend() != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


@functools.cache
def tensorflow_onednn_enabled():
    """Whether TensorFlow's oneDNN CPU ops are on in this process.

    TensorFlow turns them on by default only on x86 CPUs with AVX-512
    VNNI, AVX-512 BF16, AVX-VNNI or AMX (`TF_ENABLE_ONEDNN_OPTS` overrides
    it before TensorFlow starts), so AVX2-only CPUs run Eigen kernels.
    Asked once per process; `False` on other backends.

    Returns:
        `True` or `False`.
    """
    if keras.backend.backend() != "tensorflow":
        return False
    try:
        # No public TensorFlow API reports whether oneDNN is on.
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a TensorFlow without it: trust the variable
        return variable_on(ONEDNN_VARIABLE)
    return bool(_pywrap_util_port.IsMklEnabled())


def _winograd_pays_on_this_cpu():
    """Winograd wins on a CPU unless TensorFlow runs Eigen kernels: with
    oneDNN off (AVX2 AMD EPYC) its batched GEMMs are slower than Eigen's
    direct convolutions (RefineNet-101 512x1024: 10.5 s against 9.0 s);
    with oneDNN on it won on every CPU measured (`benchmarks/README.md`)."""
    if _accelerator_present():
        return False
    return keras.backend.backend() != "tensorflow" or (
        tensorflow_onednn_enabled()
    )


def fastest_decoder_conv(model, precision=None, view_pixels=None):
    """The decoder convolution `predict_segmentation` uses by default.

    Winograd (every 3x3 stride-1 convolution of the inference network;
    exact to float32 round-off, 4e-6 relative on RefineNet-101) for
    float32 on a CPU with views of at least `WINOGRAD_MIN_PIXELS` pixels,
    where TensorFlow's oneDNN ops are on (`tensorflow_onednn_enabled`:
    the default on AVX-512 VNNI / BF16 and AMX CPUs, or
    `TF_ENABLE_ONEDNN_OPTS=1`; with Eigen kernels direct convolutions
    measured faster); direct convolutions for 16-bit
    compute on a CPU (the Winograd layers compute in float32 and measured
    slower there, even for a Winograd model); otherwise the model's own.

    Args:
        model: a RefineNet task.
        precision: `None` (the model's policy), `"float32"` or
            `"bfloat16"`.
        view_pixels: pixels of the largest view the network sees, or
            `None` if unknown.

    Returns:
        `"direct"` or `"winograd"`.

    Example:

    >>> from keras_refinenet import tiny_refinenet
    >>> model = tiny_refinenet()
    >>> fastest_decoder_conv(model, "float32", 64 * 64)
    'direct'
    >>> fastest_decoder_conv(model, "bfloat16", 1024 * 2048)
    'direct'
    """
    if precision is not None:
        check_precision(precision)
    own = getattr(getattr(model, "backbone", None), "decoder_conv", None)
    own = own or DIRECT_CONV
    compute = keras.dtype_policies.get(
        PRECISION_POLICIES[precision] if precision else model.dtype_policy
    ).compute_dtype
    if (
        compute == "float32"
        and view_pixels is not None
        and view_pixels >= WINOGRAD_MIN_PIXELS
        and _winograd_pays_on_this_cpu()
    ):
        return WINOGRAD_CONV
    if compute != "float32" and not _accelerator_present():
        # The Winograd layers compute in float32: 3.4x slower than direct
        # bfloat16 convolutions on RefineNet-101 (AMX Xeon).
        return DIRECT_CONV
    return own


def resolve_decoder_conv(model, decoder_conv, precision, view_pixels):
    """`decoder_conv` with `"auto"` replaced by `fastest_decoder_conv`.

    Args:
        model: a RefineNet task or any callable (then `None`).
        decoder_conv: one of `INFERENCE_DECODER_CONVS`.
        precision: see `fastest_decoder_conv`.
        view_pixels: see `fastest_decoder_conv`.

    Returns:
        `"direct"`, `"winograd"`, or `None` for callables.
    """
    check_decoder_conv(decoder_conv)
    if not isinstance(model, keras.Model) or not hasattr(model, "backbone"):
        return None
    if decoder_conv == AUTO_DECODER_CONV:
        return fastest_decoder_conv(model, precision, view_pixels)
    return decoder_conv


def with_precision(model, precision, decoder_conv=None):
    """A copy of the task `model` computing in `precision` (and
    `decoder_conv`).

    `"float32"` on a float32 model with the same decoder returns `model`
    itself; otherwise the task is rebuilt from its config with the policy
    (`"mixed_bfloat16"` for `"bfloat16"`: bfloat16 compute, float32
    weights and logits) on the backbone, image encoder included, and the
    decoder convolution, and gets `model`'s weights (the Winograd layers
    keep the direct ones' weights).

    Args:
        model: a keras-hub task with a `backbone` (e.g. `RefineNet`).
        precision: one of `PRECISIONS`, or `None` to keep the model's
            policy.
        decoder_conv: `None` (the model's own), `"direct"` or
            `"winograd"`.

    Returns:
        The model in that precision.

    Example:

    >>> from keras_refinenet import tiny_refinenet
    >>> model = with_precision(tiny_refinenet(), "bfloat16")
    >>> model.backbone.image_encoder.layers[-1].dtype_policy.name
    'mixed_bfloat16'
    """
    if precision is None:
        policy = model.dtype_policy.name
    else:
        check_precision(precision)
        policy = PRECISION_POLICIES[precision]
    own = getattr(model.backbone, "decoder_conv", DIRECT_CONV)
    decoder_conv = decoder_conv or own
    if model.dtype_policy.name == policy and decoder_conv == own:
        return model
    config = model.get_config()
    backbone = config["backbone"]["config"]
    if precision is not None:
        backbone["dtype"] = keras.dtype_policies.serialize(
            keras.dtype_policies.get(policy)
        )
    backbone["decoder_conv"] = decoder_conv
    copy = type(model).from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def _zero_biases_pay():
    """Zero biases on bias-less convolutions let TensorFlow's oneDNN
    remapper fuse them with the residual adds after them (RefineNet-101
    bfloat16 512x1024 on an AMX Xeon: 0.466 -> 0.431 s); Eigen kernels
    have no such fusion."""
    return tensorflow_onednn_enabled()


def _separable_pooling_pays(network):
    """Row-then-column CRP pooling pays in 16 bits where oneDNN runs
    (Light-Weight RefineNet-101 bfloat16 on an AMX Xeon: 0.165 -> 0.156
    s); float32 measured the same (0.587 / 0.585 s)."""
    policy = getattr(network, "backbone", network).dtype_policy
    return tensorflow_onednn_enabled() and policy.compute_dtype != "float32"


@contextlib.contextmanager
def inference_tracing():
    """The trace-time settings of the compiled inference networks.

    On TensorFlow, bilinear resizes trace as its own `ResizeBilinear`
    (`native_resize`: float32 round-off from the gathers) and residual
    units' input ReLUs as `maximum(x, 0)` (`relu_as_maximum`: the same
    values, and oneDNN keeps its fusions); nothing changes elsewhere.

    Example:

    >>> import numpy as np
    >>> from keras_refinenet import tiny_refinenet
    >>> model = tiny_refinenet(num_classes=3)
    >>> with inference_tracing():
    ...     logits = model.predict_on_batch(np.zeros((1, 32, 32, 3)))
    >>> logits.shape
    (1, 32, 32, 3)
    """
    tensorflow = keras.backend.backend() == "tensorflow"
    with native_resize(tensorflow), relu_as_maximum(tensorflow):
        yield


def _variable_sums(weights):
    sums = [keras.ops.sum(keras.ops.cast(v, "float32")) for v in weights]
    return keras.ops.stack(sums)


def _fingerprint(model, cache):
    """Per-variable sums: any training step or weight load changes them.

    One compiled call on TensorFlow (28 ms for Light-Weight RefineNet-101
    on a loaded 2-core CPU, against 0.37 s eagerly); other backends sum
    eagerly.
    """
    if FINGERPRINT_KEY not in cache:
        weights = list(model.weights)
        function = lambda: _variable_sums(weights)  # noqa: E731
        if keras.backend.backend() == "tensorflow":
            # keras.ops has no backend-neutral compile of a function.
            import tensorflow as tf

            function = tf.function(function, autograph=False)
        cache[FINGERPRINT_KEY] = function
    sums = cache[FINGERPRINT_KEY]()
    return tuple(keras.ops.convert_to_numpy(sums).tolist())


def _buffer_address(tensor):
    return np.asarray(tensor).__array_interface__["data"][0]


class TensorFlowWeightWatch:
    """Tells in one compiled read (3 ms for RefineNet-101's 608 variables,
    against 22 ms for `_fingerprint`) that no TensorFlow variable of a
    model changed.

    It holds one read of every variable. TensorFlow reads alias a
    variable's buffer, and an update of an aliased buffer (assignments,
    optimizer steps, XLA steps) writes a new one, so equal buffer
    addresses mean equal values. A variable that copies on read (after a
    sparse update) never compares equal: the caller then fingerprints.
    The held reads keep the previous values in memory after a change,
    until the next `unchanged()`.

    Args:
        weights: the variables to watch.
    """

    def __init__(self, weights):
        import tensorflow as tf

        values = [w.value if hasattr(w, "value") else w for w in weights]
        self._read = tf.function(
            lambda: [v.read_value() for v in values], autograph=False
        )
        self._held = None
        self._addresses = None

    def unchanged(self):
        """`True` if no variable changed since the previous call; the
        first call and any change answer `False`."""
        reads = self._read()
        addresses = [_buffer_address(read) for read in reads]
        same = addresses == self._addresses
        self._held, self._addresses = reads, addresses
        return same


def _weights_fingerprint(model, cache):
    """`_fingerprint`, or its previous value where a
    `TensorFlowWeightWatch` shows that no variable changed."""
    if keras.backend.backend() != "tensorflow":
        return _fingerprint(model, cache)
    watch = cache.get(WATCH_KEY)
    if watch is None:
        watch = cache[WATCH_KEY] = TensorFlowWeightWatch(model.weights)
    if watch.unchanged() and FINGERPRINT_VALUE_KEY in cache:
        return cache[FINGERPRINT_VALUE_KEY]
    cache[FINGERPRINT_VALUE_KEY] = _fingerprint(model, cache)
    return cache[FINGERPRINT_VALUE_KEY]


def channel_argmax(scores, excluded_channel=None):
    """`int32` index of the largest score along the last axis.

    Args:
        scores: `(..., channels)` scores.
        excluded_channel: a channel that never wins, or `None`.

    Returns:
        The first channel holding each pixel's largest score.
    """
    if excluded_channel is not None:
        channels = keras.ops.shape(scores)[-1]
        excluded = keras.ops.one_hot(excluded_channel, channels, dtype="bool")
        scores = keras.ops.where(excluded, -np.inf, scores)
    return keras.ops.cast(keras.ops.argmax(scores, axis=-1), "int32")


@functools.cache
def _compiled_channel_argmax(excluded_channel):
    import tensorflow as tf

    argmax = functools.partial(
        channel_argmax, excluded_channel=excluded_channel
    )
    # TF's ArgMax kernel took 10 ms on 512x1024x19 scores, XLA's 2 ms.
    compiled = tf.function(argmax, jit_compile=True)
    try:
        channels = max(excluded_channel or 0, 1) + 1
        compiled(np.zeros((1, 1, 1, channels), "float32"))
    except Exception:  # A TensorFlow build without XLA on this device.
        return argmax
    return compiled


class ChannelArgmax(keras.layers.Layer):
    """The channel of the largest score per pixel, one channel skipped.

    Softmax keeps the order of a pixel's scores, so this is the argmax of
    the probabilities too.

    Args:
        excluded_channel: a channel that never wins (e.g. void), or `None`.
        **kwargs: base layer arguments.

    Example:

    >>> import numpy as np
    >>> scores = np.array([[[[0.1, 0.9, 0.5]]]], "float32")
    >>> [np.asarray(ChannelArgmax(c)(scores)).tolist() for c in (None, 1)]
    [[[[1]]], [[[2]]]]
    """

    def __init__(self, excluded_channel=None, **kwargs):
        super().__init__(**kwargs)
        self.excluded_channel = excluded_channel

    def call(self, scores):
        # XLA compiles per shape: only where the trace fixes the shape (a
        # size seen again), not after Keras generalizes to varied sizes.
        if keras.backend.backend() == "tensorflow" and None not in tuple(
            scores.shape
        ):
            return _compiled_channel_argmax(self.excluded_channel)(scores)
        return channel_argmax(scores, self.excluded_channel)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def get_config(self):
        config = super().get_config()
        config["excluded_channel"] = self.excluded_channel
        return config


def in_graph_normalization(preprocessor):
    """A `keras.layers.Rescaling` computing what `preprocessor` does to
    images, or `None` if it does more.

    The default RefineNet preprocessor only scales and offsets pixels
    (`RefineNetImageConverter` without `image_size`), which the compiled
    network can do itself: 7 ms of eager work per RefineNet-101 512x1024
    call on a 2-core AMX Xeon. Any other preprocessor (a subclass, a
    resizing converter) returns `None` and keeps running eagerly.

    Args:
        preprocessor: a task's `preprocessor`, or `None`.

    Returns:
        A layer with the converter's `scale`, `offset` and dtype policy,
        or `None`.

    Example:

    >>> from keras_refinenet import tiny_refinenet
    >>> layer = in_graph_normalization(tiny_refinenet().preprocessor)
    >>> type(layer).__name__
    'Rescaling'
    """
    from keras_refinenet.models.refinenet import (
        RefineNetImageConverter,
        RefineNetImageSegmenterPreprocessor,
    )

    if type(preprocessor) is not RefineNetImageSegmenterPreprocessor:
        return None
    converter = preprocessor.image_converter
    if (
        type(converter) is not RefineNetImageConverter
        or converter.image_size is not None
        or converter.data_format != "channels_last"
    ):
        return None
    return keras.layers.Rescaling(
        scale=np.asarray(converter.scale, "float32"),
        offset=np.asarray(converter.offset, "float32"),
        dtype=converter.dtype_policy,
    )


class CompiledForward:
    """Raw tiles in, numpy logits (or class channels) out, compiled.

    Args:
        model: the task; its `preprocessor` runs inside the compiled
            network where `in_graph_normalization` can express it, else
            eagerly.
        network: the functional network called on preprocessed tiles.
    """

    def __init__(self, model, network):
        # The cache holds this object per model: no strong reference back.
        self.model = weakref.ref(model)
        self.network = network
        preprocessor = getattr(model, "preprocessor", None)
        normalization = in_graph_normalization(preprocessor)
        #: `network` with the preprocessing inside, taking raw pixels, or
        #: `None` if the preprocessor runs eagerly.
        self.raw_network = None
        if preprocessor is None:
            self.raw_network = network
        elif normalization is not None:
            pixels = keras.Input(
                batch_shape=network.inputs[0].shape, dtype="float32"
            )
            self.raw_network = keras.Model(
                pixels, network(normalization(pixels))
            )
        self.align_corners = getattr(model, "align_corners", True)
        # `False` for stride-4 logits (`upsample_output=False`).
        self.full_size_logits = getattr(model, "upsample_output", True)
        self.num_channels = network.outputs[0].shape[-1]
        self._channel_networks = {}

    def _base_network(self):
        if self.raw_network is not None:
            return self.raw_network
        return self.network

    def _inputs(self, tiles):
        if self.raw_network is not None:
            return np.asarray(tiles, "float32")
        inputs = self.model().preprocessor(tiles)
        return keras.ops.convert_to_numpy(inputs)

    def _predict(self, network, tiles):
        with inference_tracing():
            return network.predict_on_batch(self._inputs(tiles))

    def __call__(self, tiles, training=False):
        return self._predict(self._base_network(), tiles)

    def channels(self, tiles, excluded_channel=None):
        """The winning channel of every pixel, at the tiles' size.

        One compiled call: the network, the bilinear resize of stride-4
        logits (the resize `predict_segmentation` applies to them) and the
        argmax.

        Args:
            tiles: raw `(b, h, w, 3)` pixels.
            excluded_channel: a channel that never wins, or `None`.

        Returns:
            `int32` numpy channel indices `(b, h, w)`.
        """
        network = self._channel_networks.get(excluded_channel)
        if network is None:
            base = self._base_network()
            inputs = base.inputs[0]
            scores = base.outputs[0]
            if not self.full_size_logits:
                scores = ResizeLike(align_corners=self.align_corners)(
                    [scores, inputs]
                )
            network = keras.Model(
                inputs, ChannelArgmax(excluded_channel)(scores)
            )
            self._channel_networks[excluded_channel] = network
        return np.asarray(self._predict(network, tiles))


def inference_forward(
    model,
    precision=None,
    fold_batchnorm=DEFAULT_FOLD_BATCHNORM,
    decoder_conv=None,
):
    """The compiled forward pass `predict_segmentation` runs on `model`.

    Models that are not functional Keras models (any callable mapping
    tiles to logits) are returned unchanged.

    Args:
        model: a segmentation task (e.g. `RefineNet`) or a callable.
        precision: `None` (the model's own policy), `"float32"` or
            `"bfloat16"` (`with_precision`).
        fold_batchnorm: fold BatchNorm into the preceding convolutions
            (`fold_batch_normalization`).
        decoder_conv: `None` (the model's own), `"direct"` or
            `"winograd"`: every 3x3 stride-1 convolution, image encoder
            included, as a `TransformedWinogradConv2D` (kernels
            transformed once; `inference_network(..., winograd=True)`).

    Returns:
        A callable `forward(raw_tiles, training=False) -> logits` with the
        task's `align_corners`, or `model` itself.

    Example:

    >>> import numpy as np
    >>> from keras_refinenet import tiny_refinenet
    >>> forward = inference_forward(tiny_refinenet(num_classes=3))
    >>> forward(np.zeros((1, 64, 64, 3), "float32")).shape
    (1, 64, 64, 3)
    """
    if precision is not None:
        check_precision(precision)
    if not isinstance(model, keras.Model) or not hasattr(model, "backbone"):
        return model
    if precision is not None and (
        model.dtype_policy.name == PRECISION_POLICIES[precision]
    ):
        precision = None
    own = getattr(model.backbone, "decoder_conv", DIRECT_CONV)
    if decoder_conv == own:
        decoder_conv = None
    winograd = (decoder_conv or own) == WINOGRAD_CONV
    # A Winograd network is always a copy: its decoder layers (inside the
    # RefineNet blocks) get kernels transformed once.
    rebuilt = precision is not None or decoder_conv is not None or winograd
    cache = _NETWORKS.setdefault(model, {})
    copies = fold_batchnorm or rebuilt
    fingerprint = _weights_fingerprint(model, cache) if copies else None
    key = (precision, bool(fold_batchnorm), decoder_conv)
    cached = cache.get(key)
    if cached is None or cached[0] != fingerprint:
        network = model
        if rebuilt:
            network = with_precision(model, precision, decoder_conv)
            if network is model:
                network = type(model).from_config(model.get_config())
                network.set_weights(model.get_weights())
        if fold_batchnorm or winograd:
            network = inference_network(
                network,
                fold_batchnorm,
                winograd,
                compute_dtype_weights=True,
                zero_biases=_zero_biases_pay(),
                separable_pooling=_separable_pooling_pays(network),
            )
            for layer in network._flatten_layers():
                if isinstance(layer, WinogradConv2D):
                    layer.transform_kernel_once()
        else:
            network = keras.Model(network.inputs, network.outputs)
        cached = (fingerprint, CompiledForward(model, network))
        cache[key] = cached
    return cached[1]
