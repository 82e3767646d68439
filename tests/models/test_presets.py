import json
import time

import keras
import numpy as np
import pytest

from keras_refinenet import PresetWeightsNotFoundError, RefineNet

BUILTIN = [
    "refinenet50",
    "refinenet101",
    "refinenet152",
    "refinenet101_cityscapes",
    "refinenet101_voc",
    "refinenet152_voc",
]
TINY = {"top_filters": 8, "decoder_filters": 4}


def test_builtin_presets_are_registered_with_metadata():
    presets = RefineNet.presets
    assert set(BUILTIN) <= set(presets)
    for name in BUILTIN:
        metadata = presets[name]["metadata"]
        assert metadata["description"]
        assert metadata["backbone"]
    cityscapes = presets["refinenet101_cityscapes"]["metadata"]
    # The authors' Cityscapes model: 19 train ids plus void (label 255).
    assert len(cityscapes["class_names"]) == 20
    assert cityscapes["class_names"][0] == "road"
    assert cityscapes["class_names"][19] == "void"
    assert cityscapes["label_values"][19] == 255
    assert cityscapes["palette"][0] == [128, 64, 128]
    assert (
        cityscapes["weights"]["file_name"] == "refinenet_res101_cityscapes.mat"
    )
    voc = presets["refinenet101_voc"]["metadata"]
    assert voc["class_names"][0] == "background"
    assert voc["palette"][1] == [128, 0, 0]


RELEASE_PRESETS = [
    name
    for name, preset in RefineNet.presets.items()
    if (preset["metadata"].get("weights") or {}).get("format") == "matconvnet"
]
# Two of the 14 MatConvNet presets build in the default run, all with -m large.
DEFAULT_RUN_RELEASE_PRESETS = ("refinenet101_cityscapes", "refinenet152_ade20k")


@pytest.mark.parametrize(
    "name",
    [
        name
        if name not in RELEASE_PRESETS or name in DEFAULT_RUN_RELEASE_PRESETS
        else pytest.param(name, marks=pytest.mark.large)
        for name in sorted(RefineNet.presets)
    ],
)
def test_every_preset_builds_offline(name):
    metadata = RefineNet.presets[name]["metadata"]
    model = RefineNet.from_preset(name, load_weights=False, **TINY)
    if name in RELEASE_PRESETS:
        expected = len(metadata["class_names"])
    else:
        expected = 19 if metadata["dataset"] == "cityscapes" else 21
    assert model.num_classes == expected
    if metadata["class_names"]:
        assert len(metadata["class_names"]) == expected
    encoder_module = model.backbone.image_encoder_config["module"]
    if name.endswith("_voc"):
        assert encoder_module.startswith("keras_hub")
    elif name in RELEASE_PRESETS:
        assert encoder_module.startswith("keras_refinenet")
        assert model.backbone.interpolation == "matlab_bicubic"
        assert model.image_converter.mean == [128.0] * 3
    elif name.startswith("refinenet"):
        assert encoder_module.startswith("keras_cv")
    preset = RefineNet.presets[name]
    assert set(preset) >= {"backbone", "task", "preprocessor", "metadata"}
    assert model.image_scale == preset["preprocessor"]["image_scale"]


def test_paper_variant_presets():
    two_scale = RefineNet.from_preset(
        "refinenet101_cityscapes_2scale", load_weights=False, **TINY
    )
    assert list(two_scale.backbone.input_scales) == [1.2, 0.6]
    images = np.zeros((1, 40, 56, 3), "float32")
    assert two_scale(images).shape == (1, 40, 56, 19)
    mobile = RefineNet.from_preset(
        "lwrefinenet_mobilenetv3_large_cityscapes", load_weights=False
    )
    assert "MobileNetV3" in mobile.backbone.image_encoder_config["class_name"]
    assert mobile.backbone.get_layer("refinenet_block1").output_rcu is None


@pytest.mark.parametrize(
    "name", ["refinenet101_cityscapes", "refinenet101_voc"]
)
def test_missing_weights_raise_at_once_naming_the_paths(name, tmp_path):
    start = time.monotonic()
    with pytest.raises(PresetWeightsNotFoundError) as info:
        RefineNet.from_preset(name)
    assert time.monotonic() - start < 30
    message = str(info.value)
    assert str(tmp_path / "cache") in message
    assert "keras-refinenet convert" in message


def test_preset_dir_round_trip(tmp_path, rng):
    model = RefineNet.from_preset("refinenet50", num_classes=4, **TINY)
    images = rng.uniform(0, 255, size=(1, 41, 57, 3)).astype("float32")
    preset_dir = model.save_to_preset(tmp_path / "preset")
    for filename in ["config.json", "metadata.json", "model.weights.h5"]:
        assert (preset_dir / filename).is_file()
    metadata = json.loads((preset_dir / "metadata.json").read_text())
    assert metadata["num_classes"] == 4
    restored = RefineNet.from_preset(tmp_path / "preset")
    np.testing.assert_allclose(
        restored.predict(images, verbose=0),
        model.predict(images, verbose=0),
        atol=1e-6,
    )


def test_num_classes_override_rebuilds_only_the_classifier(tmp_path):
    model = RefineNet.from_preset("refinenet50", num_classes=4, **TINY)
    model.save_to_preset(tmp_path / "preset")
    finetune = RefineNet.from_preset(tmp_path / "preset", num_classes=7)
    assert finetune.num_classes == 7
    assert finetune.classifier.kernel.shape[-1] == 7
    for name in ["level1_projection", "refinenet_block4", "image_encoder"]:
        for got, want in zip(
            finetune.backbone.get_layer(name).weights,
            model.backbone.get_layer(name).weights,
        ):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(got),
                keras.ops.convert_to_numpy(want),
            )


def test_named_preset_is_found_in_the_cache(tmp_path, rng):
    cached = RefineNet.from_preset("refinenet50", num_classes=21, **TINY)
    cached.save_to_preset(tmp_path / "cache" / "presets" / "refinenet50")
    images = rng.uniform(0, 255, size=(1, 33, 33, 3)).astype("float32")
    loaded = RefineNet.from_preset("refinenet50")
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0),
        cached.predict(images, verbose=0),
        atol=1e-6,
    )


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="refinenet101_cityscapes") as info:
        RefineNet.from_preset("refinenet9000")
    assert "Received: name_or_dir='refinenet9000'" in str(info.value)


def test_dtype_override(tmp_path):
    model = RefineNet.from_preset(
        "refinenet50", load_weights=False, dtype="mixed_bfloat16", **TINY
    )
    assert model.classifier.compute_dtype == "bfloat16"
    logits = model(np.zeros((1, 32, 32, 3), "float32"))
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
