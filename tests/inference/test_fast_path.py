"""The compiled, folded and bfloat16 forward of `predict_segmentation`."""

import os

import keras
import numpy as np
import pytest

from keras_refinenet.inference.fast_path import (
    inference_forward,
    with_precision,
)
from keras_refinenet.inference.predict import predict_segmentation
from keras_refinenet.models import tiny_refinenet

RELATIVE_TOLERANCE = 1e-4
# bfloat16 keeps 8 significant bits: logits agree to about 1e-2.
BFLOAT16_TOLERANCE = 5e-2
MIN_ARGMAX_AGREEMENT = 0.995


def relative_error(actual, expected):
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


def layer_policies(model):
    """Policies of the backbone's layers (image encoder included) and the
    classifier; the logits cast and the upsampling are float32 always."""
    layers = [*model.backbone._flatten_layers(), model.classifier]
    return {
        layer.dtype_policy.name
        for layer in layers
        if not isinstance(layer, keras.layers.InputLayer)
    }


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return tiny_refinenet(num_classes=3)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, size=(2, 64, 80, 3)).astype("float32")


def test_bfloat16_copy_has_every_layer_in_bfloat16(model, images):
    copy = with_precision(model, "bfloat16")
    assert layer_policies(copy) == {"mixed_bfloat16"}
    assert layer_policies(model) == {"float32"}
    expected = np.asarray(model(model.preprocess(images), training=False))
    actual = np.asarray(copy(copy.preprocess(images), training=False))
    assert actual.dtype == np.float32
    assert relative_error(actual, expected) < BFLOAT16_TOLERANCE


@pytest.mark.parametrize("fold_batchnorm", [False, True])
def test_compiled_forward_matches_the_model(model, images, fold_batchnorm):
    forward = inference_forward(model, fold_batchnorm=fold_batchnorm)
    expected = np.asarray(model(model.preprocess(images), training=False))
    assert relative_error(forward(images), expected) < RELATIVE_TOLERANCE
    assert inference_forward(model, fold_batchnorm=fold_batchnorm) is forward


def test_default_precision_keeps_the_models_policy(model):
    bfloat16 = with_precision(model, "bfloat16")

    def network_policies(forward):
        return {
            layer.dtype_policy.name
            for layer in forward.network._flatten_layers(include_self=False)
        }

    kept = inference_forward(bfloat16, fold_batchnorm=False)
    assert "mixed_bfloat16" in network_policies(kept)
    converted = inference_forward(bfloat16, "float32", fold_batchnorm=False)
    assert "mixed_bfloat16" not in network_policies(converted)


def test_bfloat16_network_keeps_its_weights_in_bfloat16(model, images):
    forward = inference_forward(model, "bfloat16")
    weighted = [
        layer
        for layer in forward.network._flatten_layers(include_self=False)
        if layer.weights and not isinstance(layer, keras.Model)
    ]
    sixteen_bit = [x for x in weighted if x.compute_dtype == "bfloat16"]
    assert sixteen_bit
    assert {v.dtype for x in sixteen_bit for v in x.weights} == {"bfloat16"}
    # The same values the mixed layers cast to: logits of the mixed model.
    mixed = with_precision(model, "bfloat16")
    expected = np.asarray(mixed(mixed.preprocess(images), training=False))
    assert relative_error(forward(images), expected) < BFLOAT16_TOLERANCE
    float32 = np.asarray(model(model.preprocess(images), training=False))
    assert relative_error(forward(images), float32) < BFLOAT16_TOLERANCE


def test_folded_copy_follows_weight_changes(images):
    model = tiny_refinenet(num_classes=3)
    first = inference_forward(model, fold_batchnorm=True)
    kernel = model.classifier.kernel
    kernel.assign(np.asarray(kernel) * 2.0)
    second = inference_forward(model, fold_batchnorm=True)
    assert second is not first
    expected = np.asarray(model(model.preprocess(images), training=False))
    assert relative_error(second(images), expected) < RELATIVE_TOLERANCE


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the watch reads TensorFlow variables",
)
def test_weight_watch_sees_every_kind_of_update():
    import tensorflow as tf

    from keras_refinenet.inference.fast_path import TensorFlowWeightWatch

    model = tiny_refinenet(num_classes=3)
    kernel = model.classifier.kernel
    watch = TensorFlowWeightWatch(model.weights)
    assert not watch.unchanged()  # nothing to compare with yet
    assert watch.unchanged()
    assert watch.unchanged()
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build([kernel])
    step = tf.function(
        lambda: optimizer.apply([tf.ones(kernel.shape)], [kernel])
    )
    xla_step = tf.function(
        lambda: optimizer.apply([tf.ones(kernel.shape)], [kernel]),
        jit_compile=True,
    )
    dense = {
        "assign": lambda: kernel.assign(np.asarray(kernel) + 1.0),
        "assign_sub": lambda: kernel.assign_sub(np.ones(kernel.shape)),
        "compiled optimizer step": step,
        "XLA optimizer step": xla_step,
        "set_weights": lambda: model.set_weights(model.get_weights()),
    }
    # Sliced and sparse updates switch the variable to copies on read:
    # from then on it always counts as changed.
    sparse = {
        "one element": lambda: kernel.value[0, 0, 0, 0].assign(5.0),
        "scatter": lambda: kernel.value.scatter_nd_update(
            [[0, 0, 0, 1]], [3.0]
        ),
    }
    for name, update in {**dense, **sparse}.items():
        before = np.asarray(kernel).copy()
        update()
        assert not watch.unchanged(), name
        assert watch.unchanged() == (name in dense), name
        assert name == "set_weights" or not np.array_equal(
            before, np.asarray(kernel)
        )


def test_inference_network_follows_training_and_loads(images, tmp_path):
    model = tiny_refinenet(num_classes=3)
    model.compile()

    def check():
        forward = inference_forward(model, fold_batchnorm=True)
        expected = np.asarray(model(model.preprocess(images), training=False))
        assert relative_error(forward(images), expected) < RELATIVE_TOLERANCE

    check()
    check()
    labels = np.random.default_rng(1).integers(0, 3, images.shape[:3])
    model.fit(images, labels, epochs=1, verbose=0)
    check()
    path = str(tmp_path / "weights.weights.h5")
    model.save_weights(path)
    model.set_weights([w * 0.5 for w in model.get_weights()])
    check()
    model.load_weights(path)
    check()


def test_preprocessing_runs_inside_the_compiled_network(images):
    from keras_refinenet.inference.fast_path import (
        CompiledForward,
        in_graph_normalization,
    )
    from keras_refinenet.models.refinenet import (
        RefineNetImageConverter,
        RefineNetImageSegmenterPreprocessor,
    )

    model = tiny_refinenet(num_classes=3)
    forward = inference_forward(model, fold_batchnorm=True)
    assert forward.raw_network is not None
    expected = np.asarray(model(model.preprocess(images), training=False))
    assert relative_error(forward(images), expected) < RELATIVE_TOLERANCE
    # The same scale and offset as the converter, computed independently.
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    layer = in_graph_normalization(model.preprocessor)
    np.testing.assert_allclose(
        np.asarray(layer(images)),
        (images / 255.0 - mean) / std,
        rtol=1e-5,
        atol=1e-5,
    )
    # A resizing converter or another preprocessor keeps running eagerly.
    resizing = RefineNetImageSegmenterPreprocessor(
        RefineNetImageConverter(image_size=(32, 32))
    )

    class Custom(RefineNetImageSegmenterPreprocessor):
        pass

    custom = Custom(RefineNetImageConverter())
    for preprocessor in (resizing, custom):
        assert in_graph_normalization(preprocessor) is None
    model.preprocessor = custom
    eager = CompiledForward(model, forward.network)
    assert eager.raw_network is None
    assert relative_error(eager(images), expected) < RELATIVE_TOLERANCE


def test_predict_segmentation_precisions(model, images):
    _, expected = predict_segmentation(
        model, images, return_probabilities=True, fold_batchnorm=False
    )
    _, folded = predict_segmentation(model, images, return_probabilities=True)
    assert relative_error(folded, expected) < RELATIVE_TOLERANCE
    labels = predict_segmentation(model, images, precision="bfloat16")
    assert labels.shape == (2, 64, 80)
    with pytest.raises(ValueError, match="Received: precision='float16'"):
        predict_segmentation(model, images, precision="float16")


@pytest.mark.large
def test_bfloat16_argmax_agrees_on_a_trained_demo_model():
    from keras_refinenet.data import synthetic
    from keras_refinenet.models.demo import build_demo_model

    keras.utils.set_random_seed(0)
    classes = len(synthetic.SYNTHETIC_CLASS_NAMES)
    model = build_demo_model(classes)
    train_x, train_y = synthetic.make_synthetic_arrays(256, 64, seed=1)
    model.compile(
        optimizer=keras.optimizers.AdamW(2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(
        train_x.astype("float32"), train_y, batch_size=16, epochs=6, verbose=0
    )
    test_x, test_y = synthetic.make_synthetic_arrays(32, 64, seed=2)
    float32 = predict_segmentation(model, test_x)
    bfloat16 = predict_segmentation(model, test_x, precision="bfloat16")
    assert np.mean(float32 == test_y) > 0.7  # the model is trained
    agreement = np.mean(float32 == bfloat16)
    print(f"bfloat16 argmax agreement: {agreement:.5f}")
    assert agreement >= MIN_ARGMAX_AGREEMENT


def numpy_bilinear_align_corners(array, size):
    """Bilinear resize of `(b, h, w, c)` with corners aligned, in numpy."""

    def axis_weights(source, target):
        position = np.linspace(0.0, source - 1.0, target)
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, source - 1)
        return low, high, (position - low)[:, None]

    top, bottom, row = axis_weights(array.shape[1], size[0])
    left, right, column = axis_weights(array.shape[2], size[1])
    rows = (
        array[:, top] * (1 - row[None, :, :, None])
        + array[:, bottom] * row[None, :, :, None]
    )
    return (
        rows[:, :, left] * (1 - column[None, None])
        + rows[:, :, right] * column[None, None]
    )


@pytest.mark.parametrize("upsample_output", [True, False])
def test_single_view_labels_are_the_argmax_of_the_logits(
    images, upsample_output
):
    keras.utils.set_random_seed(5)
    model = tiny_refinenet(num_classes=4, upsample_output=upsample_output)
    logits = np.asarray(model(model.preprocess(images), training=False))
    if not upsample_output:
        assert logits.shape[1:3] == (16, 20)
        logits = numpy_bilinear_align_corners(logits, images.shape[1:3])
    labels = predict_segmentation(model, images, fold_batchnorm=False)
    assert labels.dtype == np.int32
    # Pixels whose two best classes are closer than float32 round-off may
    # go either way.
    ordered = np.sort(logits, axis=-1)
    clear = ordered[..., -1] - ordered[..., -2] > 1e-4 * np.abs(logits).max()
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(
        labels[clear], np.argmax(logits, axis=-1)[clear]
    )
    # The probability path (tiles, softmax on the host) agrees.
    through_probabilities, _ = predict_segmentation(
        model, images, fold_batchnorm=False, return_probabilities=True
    )
    np.testing.assert_array_equal(labels[clear], through_probabilities[clear])


@pytest.mark.parametrize("excluded_channel", [None, 0, 3])
def test_channel_argmax_is_numpys_first_maximum(excluded_channel):
    from keras_refinenet.inference.fast_path import ChannelArgmax

    rng = np.random.default_rng(7)
    # Few distinct values: many pixels hold their largest score twice.
    scores = rng.integers(0, 3, size=(2, 9, 11, 5)).astype("float32")
    scores[0, 0, 0] = [-np.inf, -np.inf, -np.inf, 5.0, -np.inf]
    kept = scores.copy()
    if excluded_channel is not None:
        kept[..., excluded_channel] = -np.inf
    expected = np.argmax(kept, axis=-1)
    layer = ChannelArgmax(excluded_channel)
    np.testing.assert_array_equal(np.asarray(layer(scores)), expected)
    inputs = keras.Input((None, None, 5))
    graph = keras.Model(inputs, layer(inputs))
    labels = graph.predict_on_batch(scores)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, expected)


def test_channel_argmax_falls_back_without_xla(monkeypatch):
    import tensorflow as tf

    from keras_refinenet.inference import fast_path

    real_function = tf.function

    def function_without_xla(python_function=None, **options):
        if not options.get("jit_compile"):
            return real_function(python_function, **options)

        def unsupported(*args):
            raise tf.errors.UnimplementedError(None, None, "no XLA here")

        return unsupported

    scores = np.random.default_rng(8).normal(size=(1, 6, 7, 4))
    fast_path._compiled_channel_argmax.cache_clear()
    monkeypatch.setattr(tf, "function", function_without_xla)
    try:
        labels = fast_path.ChannelArgmax(2)(scores.astype("float32"))
    finally:
        fast_path._compiled_channel_argmax.cache_clear()
    scores[..., 2] = -np.inf
    np.testing.assert_array_equal(np.asarray(labels), scores.argmax(-1))


def test_single_view_void_rules_and_label_values(images):
    keras.utils.set_random_seed(6)
    model = tiny_refinenet(
        num_classes=3, void_channel=2, label_values=[7, 9, 255]
    )
    logits = np.asarray(model(model.preprocess(images), training=False))
    winners = np.argmax(logits, axis=-1)
    assert (winners == 2).any() and (winners != 2).any()
    as_label = predict_segmentation(model, images)
    expected = np.where(winners == 2, 255, winners)
    np.testing.assert_array_equal(as_label, expected)
    excluded = predict_segmentation(model, images, void="exclude")
    np.testing.assert_array_equal(excluded, np.argmax(logits[..., :2], axis=-1))
    mapped = predict_segmentation(model, images, map_labels=True)
    np.testing.assert_array_equal(mapped, np.array([7, 9, 255])[winners])
    single = predict_segmentation(model, images[0], void="exclude")
    np.testing.assert_array_equal(single, excluded[0])
    with pytest.raises(ValueError, match="Received: void_channel=5"):
        predict_segmentation(model, images, void_channel=5)


def test_fastest_decoder_conv_rules(model, monkeypatch):
    from keras_refinenet.inference import fast_path
    from keras_refinenet.inference.fast_path import (
        WINOGRAD_MIN_PIXELS,
        fastest_decoder_conv,
        resolve_decoder_conv,
    )

    monkeypatch.setattr(fast_path, "tensorflow_onednn_enabled", lambda: True)
    assert WINOGRAD_MIN_PIXELS == 256 * 512
    large, small = WINOGRAD_MIN_PIXELS, WINOGRAD_MIN_PIXELS - 1
    assert fastest_decoder_conv(model, None, large) == "winograd"
    assert fastest_decoder_conv(model, "float32", small) == "direct"
    assert fastest_decoder_conv(model, "bfloat16", large) == "direct"
    assert fastest_decoder_conv(model, None, None) == "direct"
    winograd = tiny_refinenet(num_classes=3, decoder_conv="winograd")
    assert fastest_decoder_conv(winograd, None, small) == "winograd"
    assert fastest_decoder_conv(winograd, "bfloat16", large) == "direct"
    assert resolve_decoder_conv(model, "direct", None, large) == "direct"
    assert resolve_decoder_conv(len, "auto", None, large) is None
    with pytest.raises(ValueError, match="Received: decoder_conv='fast'"):
        resolve_decoder_conv(model, "fast", None, large)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow's oneDNN"
)
def test_eigen_kernels_keep_direct_convolutions(model, monkeypatch):
    import subprocess
    import sys

    from keras_refinenet.inference import fast_path

    large = 1024 * 2048
    monkeypatch.setattr(fast_path, "tensorflow_onednn_enabled", lambda: False)
    assert fast_path.fastest_decoder_conv(model, "float32", large) == "direct"
    winograd = tiny_refinenet(num_classes=3, decoder_conv="winograd")
    assert fast_path.fastest_decoder_conv(winograd, None, large) == "winograd"
    # The real state follows TF_ENABLE_ONEDNN_OPTS, read at TensorFlow start.
    probe = (
        "from keras_refinenet.inference.fast_path import "
        "tensorflow_onednn_enabled as on; print(on())"
    )
    for setting, expected in (("0", "False"), ("1", "True")):
        completed = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting},
            check=True,
        )
        assert completed.stdout.split()[-1] == expected


def test_winograd_copy_matches_the_direct_model(model, images):
    from keras_refinenet.layers.winograd_conv import (
        TransformedWinogradConv2D,
        WinogradConv2D,
    )

    forward = inference_forward(model, decoder_conv="winograd")
    layers = list(forward.network._flatten_layers())
    # Image encoder convs replaced; decoder convs with kernels transformed
    # once; none of them the model's own layers.
    assert any(isinstance(x, TransformedWinogradConv2D) for x in layers)
    decoder = [x for x in layers if isinstance(x, WinogradConv2D)]
    assert decoder and all(x._transformed_kernel is not None for x in decoder)
    own = {id(x) for x in model._flatten_layers()}
    assert not any(id(x) in own for x in decoder)
    expected = np.asarray(model(model.preprocess(images), training=False))
    assert relative_error(forward(images), expected) < RELATIVE_TOLERANCE
    _, direct = predict_segmentation(
        model, images, return_probabilities=True, decoder_conv="direct"
    )
    _, winograd = predict_segmentation(
        model, images, return_probabilities=True, decoder_conv="winograd"
    )
    assert relative_error(winograd, direct) < RELATIVE_TOLERANCE


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow's oneDNN"
)
def test_onednn_state_without_the_private_module(monkeypatch):
    import sys

    from tensorflow.python import util

    from keras_refinenet.inference.fast_path import tensorflow_onednn_enabled

    monkeypatch.delattr(util, "_pywrap_util_port", raising=False)
    monkeypatch.setitem(
        sys.modules, "tensorflow.python.util._pywrap_util_port", None
    )
    ask = tensorflow_onednn_enabled.__wrapped__  # past the per-process cache
    for setting, expected in (("1", True), ("0", False), ("true", True)):
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", setting)
        assert ask() is expected
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    assert ask() is False
