"""RefineNet as a keras-hub family: contracts, presets, loaders, migration."""

import json
import pathlib
import types

import h5py
import keras
import keras_hub
import numpy as np
import pytest

from keras_refinenet import (
    RefineNet,
    RefineNetBackbone,
    RefineNetImageConverter,
    RefineNetImageSegmenter,
    RefineNetImageSegmenterPreprocessor,
    tiny_refinenet,
)
from keras_refinenet.models.encoders import resnet_backbone

TestCase = pytest.importorskip("keras_hub.src.tests.test_case").TestCase

LEGACY_PRESET = pathlib.Path(__file__).parent / "data" / "legacy_preset"
TINY_DECODER = {"top_filters": 8, "decoder_filters": 4}
TINY_ENCODER = {"filters": (4, 4, 8, 8), "blocks": (1, 1, 1, 1)}
SIZE = 32


def tiny_encoder(library="keras_cv", dtype=None):
    return resnet_backbone(None, library=library, dtype=dtype, **TINY_ENCODER)


def raw_images(batch=2, height=SIZE, width=SIZE, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (batch, height, width, 3)).astype("float32")


def numpy(variable):
    return keras.ops.convert_to_numpy(variable)


class RefineNetContractsTest(TestCase):
    def test_backbone_contract(self):
        self.run_backbone_test(
            cls=RefineNetBackbone,
            init_kwargs={"image_encoder": tiny_encoder(), **TINY_DECODER},
            input_data=raw_images() / 255.0,
            # Stride-4 features, `decoder_filters` wide.
            expected_output_shape=(2, SIZE // 4, SIZE // 4, 4),
            # Keras' `compute_output_spec` fails on numpy input through the
            # nested encoder; `test_dtype_reaches_every_layer` counts the
            # layer policies instead.
            run_mixed_precision_check=False,
            run_quantization_check=False,
        )

    def test_task_contract(self):
        """`run_task_test`'s checks; RefineNet does not compile at
        construction (its defaults may need the run's `decay_steps`)."""
        import tensorflow as tf

        images = raw_images()
        labels = np.random.default_rng(1).integers(0, 3, (2, SIZE, SIZE))
        task = RefineNetImageSegmenter(
            backbone=RefineNetBackbone(tiny_encoder(), **TINY_DECODER),
            num_classes=3,
            preprocessor=RefineNetImageSegmenterPreprocessor(
                RefineNetImageConverter()
            ),
        )
        self.run_serialization_test(task)
        preprocessor = task.preprocessor
        ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)
        output = task.predict(images, verbose=0)
        self.assertEqual(output.shape, (2, SIZE, SIZE, 3))
        self.assertAllClose(output, task.predict(ds, verbose=0))
        task.preprocessor = None
        split = task.predict(ds.map(preprocessor), verbose=0)
        task.preprocessor = preprocessor
        self.assertAllClose(output, split)
        with self.assertRaisesRegex(ValueError, "You must call `compile"):
            task.fit(ds, verbose=0)
        task.compile(optimizer_name="adamw")
        task.fit(images, labels, verbose=0)
        task.fit(ds, verbose=0)

    def test_converter_layer_contract(self):
        mean, std, scale = [1.0, 2.0, 3.0], [2.0, 4.0, 8.0], 0.5
        images = raw_images(1, 4, 5)
        self.run_preprocessing_layer_test(
            cls=RefineNetImageConverter,
            init_kwargs={"image_scale": scale, "mean": mean, "std": std},
            input_data=images,
            expected_output=(
                (images * scale - np.array(mean)) / np.array(std)
            ).tolist(),
        )

    def test_model_saving(self):
        self.run_model_saving_test(
            cls=RefineNetImageSegmenter,
            init_kwargs={
                "backbone": RefineNetBackbone(tiny_encoder(), **TINY_DECODER),
                "num_classes": 3,
            },
            input_data=raw_images() / 255.0,
            atol=1e-5,
            rtol=1e-5,
        )


def test_converter_normalizes_like_the_formula():
    converter = RefineNetImageConverter(
        image_scale=1.0 / 255.0, mean=[0.5, 0.25, 0.0], std=[0.5, 0.25, 2.0]
    )
    images = raw_images(1, 3, 4)
    want = (images / 255.0 - [0.5, 0.25, 0.0]) / [0.5, 0.25, 2.0]
    np.testing.assert_allclose(numpy(converter(images)), want, atol=1e-5)
    scalar = RefineNetImageConverter(image_scale=1.0, mean=100.0, std=50.0)
    np.testing.assert_allclose(
        numpy(scalar(images)), (images - 100.0) / 50.0, atol=1e-5
    )
    assert converter.image_size is None
    with pytest.raises(ValueError, match="Received: std"):
        RefineNetImageConverter(std=[0.0, 1.0, 1.0])


def test_keras_hub_loaders_return_our_classes_with_equal_outputs(tmp_path):
    model = tiny_refinenet(num_classes=4)
    images = raw_images()
    expected = model.predict(images, verbose=0)
    preset_dir = model.save_to_preset(tmp_path / "preset")
    for name in [
        "config.json",
        "task.json",
        "preprocessor.json",
        "model.weights.h5",
        "task.weights.h5",
        "metadata.json",
    ]:
        assert (preset_dir / name).is_file(), name
    task = keras_hub.models.ImageSegmenter.from_preset(str(preset_dir))
    assert type(task) is RefineNetImageSegmenter
    assert isinstance(task.preprocessor, RefineNetImageSegmenterPreprocessor)
    np.testing.assert_allclose(
        task.predict(images, verbose=0), expected, atol=1e-5
    )
    backbone = keras_hub.models.Backbone.from_preset(str(preset_dir))
    assert type(backbone) is RefineNetBackbone
    normalized = model.preprocessor(images)
    np.testing.assert_allclose(
        numpy(backbone(normalized)),
        numpy(model.backbone(normalized)),
        atol=1e-5,
    )
    ours = RefineNet.from_preset(preset_dir)
    np.testing.assert_allclose(
        ours.predict(images, verbose=0), expected, atol=1e-5
    )
    metadata = json.loads((preset_dir / "metadata.json").read_text())
    assert metadata["num_classes"] == 4
    assert metadata["keras_hub_version"] == keras_hub.__version__


def test_num_classes_override_loads_the_backbone_and_builds_once(
    tmp_path, monkeypatch
):
    model = tiny_refinenet(num_classes=4)
    model.save_to_preset(tmp_path / "preset")
    built = []
    original = RefineNetImageSegmenter.__init__

    def counting_init(self, *args, **kwargs):
        built.append(kwargs.get("num_classes"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(RefineNetImageSegmenter, "__init__", counting_init)
    finetune = RefineNet.from_preset(tmp_path / "preset", num_classes=7)
    assert built == [7]
    assert finetune.classifier.kernel.shape[-1] == 7
    for got, want in zip(finetune.backbone.weights, model.backbone.weights):
        np.testing.assert_array_equal(numpy(got), numpy(want))


def test_upload_preset_accepts_the_directory(tmp_path, monkeypatch):
    from keras_hub.src.utils import preset_utils

    preset_dir = tiny_refinenet().save_to_preset(tmp_path / "preset")
    uploaded = {}

    def upload_folder(repo_id, folder_path):
        uploaded[repo_id] = sorted(
            p.name for p in pathlib.Path(folder_path).iterdir()
        )

    fake_hub = types.SimpleNamespace(
        create_repo=lambda repo_id, exist_ok: types.SimpleNamespace(
            repo_id=repo_id
        ),
        file_exists=lambda repo_id, filename: True,
        upload_folder=upload_folder,
    )
    monkeypatch.setattr(preset_utils, "huggingface_hub", fake_hub)
    keras_hub.upload_preset("hf://someone/refinenet_tiny", str(preset_dir))
    assert "task.json" in uploaded["someone/refinenet_tiny"]
    (preset_dir / "model.weights.h5").unlink()
    with pytest.raises(FileNotFoundError, match="weights file is missing"):
        keras_hub.upload_preset("hf://someone/refinenet_tiny", str(preset_dir))


def test_legacy_preset_directory_migrates_every_weight():
    model = RefineNet.from_preset(LEGACY_PRESET)
    assert model.num_classes == 3
    assert model.backbone.num_cascades == 1
    variables = {id(v): v for v in model.weights}
    values = [(v, numpy(v)) for v in variables.values()]
    with h5py.File(LEGACY_PRESET / "model.weights.h5", "r") as file:
        arrays = {}
        file.visititems(
            lambda name, item: (
                arrays.__setitem__(name, item[()])
                if isinstance(item, h5py.Dataset)
                else None
            )
        )
    assert len(arrays) == len(values)
    matched = set()
    for name, array in arrays.items():
        owners = [
            v
            for v, value in values
            if value.shape == array.shape and np.array_equal(value, array)
        ]
        assert len(owners) == 1, name
        matched.add(id(owners[0]))
    assert len(matched) == len(values)
    # The legacy graph created the four projections, then the classifier.
    np.testing.assert_array_equal(
        numpy(model.classifier.kernel), arrays["layers/conv2d_4/vars/0"]
    )
    projection = model.backbone.get_layer("level1_projection")
    np.testing.assert_array_equal(
        numpy(projection.kernel), arrays["layers/conv2d/vars/0"]
    )
    # The legacy normalization (ImageNet, 0..1) is now the preprocessor.
    assert model.image_scale == pytest.approx(1.0 / 255.0)
    assert model.image_mean == pytest.approx([0.485, 0.456, 0.406])


def test_legacy_preset_with_new_classes_keeps_the_rest():
    model = RefineNet.from_preset(LEGACY_PRESET, num_classes=5)
    assert model.classifier.kernel.shape[-1] == 5
    with h5py.File(LEGACY_PRESET / "model.weights.h5", "r") as file:
        projection = file["layers/conv2d/vars/0"][()]
    np.testing.assert_array_equal(
        numpy(model.backbone.get_layer("level1_projection").kernel),
        projection,
    )


def _layer_policies(model):
    return {
        layer.dtype_policy.name
        for layer in model._flatten_layers(include_self=False)
        if not isinstance(layer, keras.layers.InputLayer)
        and layer.name not in ("logits", "upsample")
    }


@pytest.mark.parametrize("source", ["registry", "directory"])
def test_dtype_reaches_every_layer(source, tmp_path):
    policy = "mixed_bfloat16"
    if source == "registry":
        model = RefineNet.from_preset(
            "refinenet50", load_weights=False, dtype=policy, **TINY_DECODER
        )
    else:
        tiny_refinenet().save_to_preset(tmp_path / "preset")
        model = RefineNet.from_preset(tmp_path / "preset", dtype=policy)
    encoder_layers = model.backbone.image_encoder.layers
    assert len(encoder_layers) > 10
    assert _layer_policies(model.backbone) == {policy}
    assert {layer.dtype_policy.name for layer in encoder_layers[1:]} == {policy}
    assert model.logits_cast.compute_dtype == "float32"
    logits = model(np.zeros((1, SIZE, SIZE, 3), "float32"))
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"


def test_mobilenet_head_is_cut():
    model = RefineNet.from_preset(
        "lwrefinenet_mobilenetv3_large_cityscapes", load_weights=False
    )
    paths = [v.path for v in model.weights]
    assert not [path for path in paths if "Conv_1" in path]
    full = keras.layers.deserialize(model.backbone.image_encoder_config)
    assert any("Conv_1" in v.path for v in full.weights)
    # The serialized config still holds the whole encoder: it round-trips.
    clone = RefineNetBackbone.from_config(model.backbone.get_config())
    assert clone.count_params() == model.backbone.count_params()


def test_predict_segmentation_applies_the_preprocessor():
    model = tiny_refinenet(num_classes=3)
    images = raw_images(1)
    logits = numpy(model(model.preprocessor(images), training=False))
    class_ids = model.predict_segmentation(images[0])
    np.testing.assert_array_equal(class_ids, logits[0].argmax(-1))
    # Without normalization the logits differ: the preprocessor matters.
    raw = numpy(model(images, training=False))
    assert not np.allclose(raw, logits)


def test_compile_defaults_delegate_to_training_defaults():
    from keras_refinenet.training.losses import (
        SparseCategoricalCrossentropyIgnore,
    )

    model = tiny_refinenet()
    assert not model.compiled
    model.compile(decoder_lr_multiplier=10.0)
    assert isinstance(model.loss, SparseCategoricalCrossentropyIgnore)
    images = raw_images()
    labels = np.random.default_rng(2).integers(0, 3, (2, SIZE, SIZE))
    history = model.fit(images, labels, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_import_loads_no_data_training_or_inference_modules():
    import subprocess
    import sys

    code = (
        "import sys, keras_refinenet; print(sorted(m for m in sys.modules "
        "if m.startswith(('keras_refinenet.data', "
        "'keras_refinenet.training', 'keras_refinenet.inference'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=pathlib.Path(__file__).parents[2],
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
