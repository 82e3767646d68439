import math
import warnings

import keras
import numpy as np
import pytest

from keras_refinenet import RefineNet, resnet_backbone, tiny_refinenet
from keras_refinenet.models.refinenet.refinenet_image_converter import (
    IMAGENET_MEAN,
    IMAGENET_STD,
)
from tests import numpy_reference as ref

# Trainable parameters of the authors' PyTorch RefineNet-101, 19 classes.
PYTORCH_REFINENET101_PARAMS = 118_047_827


def _np(variable):
    return keras.ops.convert_to_numpy(variable)


def _count(weights):
    return sum(math.prod(w.shape) for w in weights)


@pytest.mark.parametrize("library", ["keras_cv", "keras_hub"])
def test_refinenet101_parameter_count_matches_pytorch(library):
    model = RefineNet(resnet_backbone(101, library=library), num_classes=19)
    assert _count(model.trainable_weights) == PYTORCH_REFINENET101_PARAMS


def _rcu(x, layer):
    convs = [
        (_np(c.kernel), None if c.bias is None else _np(c.bias))
        for c in layer.convs
    ]
    return ref.residual_conv_unit(x, list(zip(convs[0::2], convs[1::2])))


def _crp(x, layer):
    return ref.chained_residual_pooling(x, [_np(c.kernel) for c in layer.convs])


def test_decoder_follows_the_reference_computation(tiny_model_factory, rng):
    """Projection, RCUs, fusion, CRP and classifier wired as the authors do."""
    model = tiny_model_factory()
    images = rng.uniform(0, 255, size=(1, 67, 45, 3)).astype("float32")
    # The converter's normalization, computed by hand.
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    normalized = ((images / 255.0 - mean) / std).astype("float32")
    np.testing.assert_allclose(
        np.asarray(model.preprocessor(images)), normalized, atol=1e-5
    )
    features = model.backbone.image_encoder(normalized)
    features = [np.asarray(f, np.float64) for f in reversed(features)]
    x = None
    for level, feature in enumerate(features, start=1):
        block = model.backbone.get_layer(f"refinenet_block{level}")
        projection = model.backbone.get_layer(f"level{level}_projection")
        assert projection.bias is None
        path = ref.conv2d_same(feature, _np(projection.kernel))
        path = _rcu(path, block.adaptive_rcus[0])
        if x is None:
            fused = path
        else:
            assert block.adaptive_rcus[1] is None
            fused = ref.multi_resolution_fusion(
                [path, x], [_np(c.kernel) for c in block.fusion.convs]
            )
        x = _rcu(_crp(ref.relu(fused), block.crp), block.output_rcu)
    classifier = model.get_layer("classifier")
    logits = ref.conv2d_same(x, _np(classifier.kernel), _np(classifier.bias))
    want = ref.resize_bilinear(logits, images.shape[1:3], align_corners=True)
    got = model.predict(images, verbose=0)
    np.testing.assert_allclose(
        got, want, rtol=1e-3, atol=1e-3 * np.abs(want).max()
    )


def test_layer_widths_follow_the_paper_defaults():
    model = RefineNet(resnet_backbone(101), num_classes=19)
    layer = model.backbone.get_layer
    kernel_shapes = {
        name: tuple(layer(name).kernel.shape)
        for name in [f"level{k}_projection" for k in range(1, 5)]
    }
    kernel_shapes["classifier"] = tuple(model.classifier.kernel.shape)
    assert kernel_shapes == {
        "level1_projection": (3, 3, 2048, 512),
        "level2_projection": (3, 3, 1024, 256),
        "level3_projection": (3, 3, 512, 256),
        "level4_projection": (3, 3, 256, 256),
        "classifier": (3, 3, 256, 19),
    }
    block2 = layer("refinenet_block2")
    assert [tuple(c.kernel.shape) for c in block2.fusion.convs] == [
        (3, 3, 256, 256),
        (3, 3, 512, 256),
    ]
    assert block2.crp.num_stages == 4 and block2.output_rcu.num_blocks == 3
    assert layer("refinenet_block1").adaptive_rcus[0].num_blocks == 2


@pytest.mark.parametrize("size", [(97, 133), (64, 64), (33, 50)])
def test_any_input_size(tiny_model_factory, size, rng):
    model = tiny_model_factory()
    images = rng.uniform(0, 255, size=(2, *size, 3)).astype("float32")
    assert model.predict(images, verbose=0).shape == (2, *size, 3)


def test_stride4_output(tiny_model_factory, rng):
    model = tiny_model_factory(upsample_output=False)
    images = rng.uniform(0, 255, size=(1, 97, 133, 3)).astype("float32")
    assert model.predict(images, verbose=0).shape == (1, 25, 34, 3)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_logits_are_float32_under_mixed_precision(tiny_model_factory, policy):
    keras.config.set_dtype_policy(policy)
    model = tiny_model_factory()
    logits = model(np.full((1, 40, 52, 3), 128.0, "float32"))
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert model.classifier.compute_dtype != "float32"
    assert np.isfinite(np.asarray(logits)).all()


def test_dropout_only_in_training(tiny_model_factory, rng):
    model = tiny_model_factory()
    images = rng.uniform(0, 255, size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(
        np.asarray(model(images, training=False)), np.asarray(model(images))
    )
    assert not np.allclose(
        np.asarray(model(images, training=True)), np.asarray(model(images))
    )


def test_keras_file_round_trip(tiny_model_factory, tmp_path, rng):
    model = tiny_model_factory(library="keras_hub", align_corners=False)
    images = rng.uniform(0, 255, size=(1, 45, 61, 3)).astype("float32")
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, RefineNet)
    assert restored.backbone.get_config()["align_corners"] is False
    assert restored.image_mean == list(IMAGENET_MEAN)
    np.testing.assert_allclose(
        restored.predict(images, verbose=0),
        model.predict(images, verbose=0),
        atol=1e-5,
    )


def test_keras_hub_backbone(tiny_model_factory, rng):
    model = tiny_model_factory(library="keras_hub")
    encoder = model.backbone.image_encoder_config
    assert encoder["module"].startswith("keras_hub")
    assert model(np.zeros((1, 37, 41, 3), "float32")).shape == (1, 37, 41, 3)


def test_freeze_backbone(tiny_model_factory):
    full = tiny_model_factory()
    frozen = tiny_model_factory(freeze_backbone=True)
    backbone_params = _count(full.backbone.image_encoder.trainable_weights)
    assert _count(frozen.trainable_weights) == (
        _count(full.trainable_weights) - backbone_params
    )


def test_freeze_batchnorm_runs_in_inference_mode(tiny_model_factory, rng):
    model = tiny_model_factory(
        freeze_batchnorm=True, backbone_dropout=0.0, classifier_dropout=0.0
    )
    batchnorms = [
        layer
        for layer in model.backbone.image_encoder._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert batchnorms and not any(bn.trainable for bn in batchnorms)
    assert any(w.trainable for w in model.backbone.image_encoder.weights)
    images = rng.uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        model(images, training=True), model(images, training=False), atol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 0}, "num_classes=0"),
        ({"num_classes": 3, "backbone_dropout": 1.0}, "backbone_dropout=1.0"),
        ({"num_classes": 3, "decoder_filters": -2}, "decoder_filters=-2"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RefineNet(resnet_backbone(50), **kwargs)


def test_backbone_without_pyramid_is_refused():
    inputs = keras.Input((None, None, 3))
    plain = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    with pytest.raises(ValueError, match="feature pyramid"):
        RefineNet(plain, num_classes=2)


def test_compiled_model_round_trip_restores_training_state(
    tiny_model_factory, tmp_path, rng
):
    model = tiny_model_factory()
    model.compile(decoder_lr_multiplier=10.0)
    images = rng.uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(2, 32, 32))
    model.fit(images, labels, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*compile\\(\\)` was not")
        restored = keras.saving.load_model(tmp_path / "model.keras")
        model.save_to_preset(tmp_path / "preset")
        RefineNet.from_preset(tmp_path / "preset")
    assert type(restored.optimizer) is type(model.optimizer)
    assert int(restored.optimizer.iterations) == 1
    restored.fit(images, labels, epochs=1, verbose=0)


def test_predict_on_arrays_matches_the_direct_call():
    import tensorflow as tf

    keras.utils.set_random_seed(2)
    model = tiny_refinenet(num_classes=3)
    images = (
        np.random.default_rng(4).uniform(0, 255, (5, 40, 48, 3)).astype("f4")
    )
    expected = np.asarray(model(model.preprocess(images), training=False))
    for batch_size in (None, 2):
        outputs = model.predict(images, batch_size=batch_size, verbose=0)
        np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    tensor = model.predict(tf.constant(images), verbose=0)
    np.testing.assert_allclose(tensor, expected, rtol=1e-5, atol=1e-5)


def test_predict_traces_tensorflows_bilinear_op(monkeypatch):
    from keras_refinenet.layers import resize

    calls = []
    original = resize._tensorflow_bilinear

    def recording(images, size, align_corners):
        calls.append(size)
        return original(images, size, align_corners)

    monkeypatch.setattr(resize, "_tensorflow_bilinear", recording)
    keras.utils.set_random_seed(3)
    model = tiny_refinenet(num_classes=3, predict_decoder_conv="direct")
    images = (
        np.random.default_rng(5).uniform(0, 255, (2, 40, 48, 3)).astype("f4")
    )
    expected = np.asarray(model(model.preprocess(images), training=False))
    assert not calls
    outputs = model.predict(images, verbose=0)
    assert calls
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    # Outside `predict` the model keeps the gather path.
    calls.clear()
    model(model.preprocess(images), training=False)
    assert not calls


def test_array_dataset_batches_without_autotuning():
    from keras_refinenet.models.refinenet.refinenet_image_segmenter import (
        array_dataset,
    )

    images = np.arange(5 * 2 * 2 * 3, dtype="float32").reshape(5, 2, 2, 3)
    dataset = array_dataset(images, 2)
    assert dataset.options().autotune.enabled is False
    batches = [np.asarray(batch) for batch in dataset]
    assert [len(batch) for batch in batches] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate(batches), images)


def _relative_error(actual, expected):
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


def record_predict_calls(monkeypatch):
    """The models whose `predict` or `predict_on_batch` run, in order."""
    networks = []
    for name in ("predict", "predict_on_batch"):
        original = getattr(keras.Model, name)

        def recording(self, *args, original=original, **kwargs):
            networks.append(self)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(keras.Model, name, recording)
    return networks


def test_predict_in_batches_shows_progress_and_checks_its_input(capsys):
    from keras_refinenet.models.refinenet.refinenet_image_segmenter import (
        predict_in_batches,
    )

    calls = []

    def forward(batch):
        calls.append(len(batch))
        return batch * 2.0

    images = np.arange(5 * 2, dtype="float32").reshape(5, 2)
    outputs = predict_in_batches(forward, images, 2)
    np.testing.assert_array_equal(outputs, images * 2.0)
    assert calls == [2, 2, 1]
    assert "3/3" in capsys.readouterr().out
    predict_in_batches(forward, images, 2, verbose=0)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="Received: x.shape=\\(0, 2\\)"):
        predict_in_batches(forward, images[:0], 2)
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        predict_in_batches(forward, images, 0)


def test_predict_runs_the_winograd_network_for_large_views(monkeypatch):
    from keras_refinenet.inference import fast_path
    from keras_refinenet.layers.winograd_conv import (
        TransformedWinogradConv2D,
    )

    # Views of 40x48 count as large here, so the tiny model takes the
    # path RefineNet-101 takes at 512x1024.
    monkeypatch.setattr(fast_path, "WINOGRAD_MIN_PIXELS", 40 * 48)
    monkeypatch.setattr(fast_path, "tensorflow_onednn_enabled", lambda: True)
    keras.utils.set_random_seed(5)
    model = tiny_refinenet(num_classes=3)
    assert model.predict_decoder_conv == "auto"
    images = (
        np.random.default_rng(6).uniform(0, 255, (3, 40, 48, 3)).astype("f4")
    )
    networks = record_predict_calls(monkeypatch)

    def direct():
        return np.asarray(model(model.preprocess(images), training=False))

    outputs = model.predict(images, batch_size=2, verbose=0)
    (network,) = networks[-1:]
    assert network is not model
    kinds = {type(layer) for layer in network._flatten_layers()}
    assert TransformedWinogradConv2D in kinds
    assert _relative_error(outputs, direct()) < 1e-4
    # The network follows weight changes of the model.
    model.set_weights([w * 1.5 for w in model.get_weights()])
    outputs = model.predict(images, verbose=0)
    assert networks[-1] is not model
    assert _relative_error(outputs, direct()) < 1e-4
    # Small views run the folded network without Winograd (oneDNN on).
    small = model.predict(images[:, :20], verbose=0)
    kinds = {type(layer) for layer in networks[-1]._flatten_layers()}
    assert networks[-1] is not model
    assert TransformedWinogradConv2D not in kinds
    assert keras.layers.BatchNormalization not in kinds
    expected = np.asarray(
        model(model.preprocess(images[:, :20]), training=False)
    )
    assert _relative_error(small, expected) < 1e-4
    # Eigen kernels keep the model's weights; "direct" runs the model.
    monkeypatch.setattr(fast_path, "tensorflow_onednn_enabled", lambda: False)
    model.predict(images[:, :20], verbose=0)
    kinds = {type(layer) for layer in networks[-1]._flatten_layers()}
    assert keras.layers.BatchNormalization in kinds
    model.predict_decoder_conv = "direct"
    model.predict(images, verbose=0)
    assert networks[-1] is model


def test_bfloat16_predict_runs_the_folded_bfloat16_network(monkeypatch):
    keras.utils.set_random_seed(7)
    model = tiny_refinenet(num_classes=3, dtype="mixed_bfloat16")
    images = (
        np.random.default_rng(8).uniform(0, 255, (2, 32, 40, 3)).astype("f4")
    )
    networks = record_predict_calls(monkeypatch)
    outputs = model.predict(images, verbose=0)
    network = networks[-1]
    assert network is not model
    assert not any(
        isinstance(layer, keras.layers.BatchNormalization)
        for layer in network._flatten_layers()
    )
    expected = np.asarray(model(model.preprocess(images), training=False))
    # bfloat16 keeps 8 significant bits.
    assert _relative_error(outputs, expected) < 5e-2
    model.predict_decoder_conv = "direct"
    model.predict(images, verbose=0)
    assert networks[-1] is model


def test_predict_decoder_conv_is_checked_and_saved():
    model = tiny_refinenet(num_classes=3, predict_decoder_conv="direct")
    config = model.get_config()
    assert config["predict_decoder_conv"] == "direct"
    assert RefineNet.from_config(config).predict_decoder_conv == "direct"
    with pytest.raises(ValueError, match="Received: predict_decoder_conv='x'"):
        tiny_refinenet(num_classes=3, predict_decoder_conv="x")
