"""Where named presets find their weights; bad weights are refused."""

import json
import pathlib
import time

import numpy as np
import pytest

from keras_refinenet import PresetWeightsNotFoundError, RefineNet
from keras_refinenet.models import preset_io
from keras_refinenet.models.presets import PRESETS
from keras_refinenet.models.refinenet.refinenet_presets import (
    split_refinenet_config,
)

TINY_CONFIG = {
    "backbone": {"library": "keras_hub", "depth": 50},
    "num_classes": 3,
    "top_filters": 8,
    "decoder_filters": 4,
}
TINY_NAME = "tiny_test_voc"


def _tiny_model(**overrides):
    config = {**TINY_CONFIG, **overrides}
    parts = split_refinenet_config(config)
    return preset_io.build_from_parts(RefineNet, *parts, {})


def _images(rng):
    return rng.uniform(0, 255, (1, 37, 45, 3)).astype("float32")


@pytest.fixture
def tiny_preset(monkeypatch):
    """A registry entry with published weights but a tiny architecture."""
    entry = {
        "metadata": {
            "description": "tiny",
            "backbone": "ResNet-50",
            "weights": {
                "source": "https://example.org/authors",
                "format": "refinenet-pytorch",
                "url": None,
                "sha256": None,
                "how_to_get": (
                    "keras-refinenet convert refinenet-pytorch CHECKPOINT "
                    f"--name {TINY_NAME}"
                ),
            },
        },
        "config": dict(TINY_CONFIG),
    }
    monkeypatch.setitem(PRESETS, TINY_NAME, entry)
    return entry


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_REFINENET_CACHE", str(tmp_path / "elsewhere"))
    assert preset_io.cached_preset_dir("x") == (
        tmp_path / "elsewhere" / "presets" / "x"
    )


def test_named_preset_loads_from_the_cache(tmp_path, rng, tiny_preset):
    model = _tiny_model()
    model.save_to_preset(tmp_path / "cache" / "presets" / TINY_NAME)
    assert preset_io.preset_metadata(TINY_NAME)["weights_on_disk"]
    loaded = RefineNet.from_preset(TINY_NAME)
    images = _images(rng)
    np.testing.assert_allclose(loaded(images), model(images), atol=1e-6)


def test_explicit_directory_comes_before_the_cache(tmp_path, rng, tiny_preset):
    cached = _tiny_model()
    cached.save_to_preset(tmp_path / "cache" / "presets" / TINY_NAME)
    explicit = _tiny_model(num_classes=2)
    explicit.save_to_preset(tmp_path / "mine")
    loaded = RefineNet.from_preset(tmp_path / "mine")
    images = _images(rng)
    np.testing.assert_allclose(loaded(images), explicit(images), atol=1e-6)


def test_missing_weights_fail_at_once_with_the_convert_command(
    tmp_path, tiny_preset
):
    start = time.monotonic()
    with pytest.raises(PresetWeightsNotFoundError) as info:
        RefineNet.from_preset(TINY_NAME)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert str(tmp_path / "cache" / "presets" / TINY_NAME) in message
    assert f"refinenet-pytorch CHECKPOINT --name {TINY_NAME}" in message


def test_unreachable_url_fails_fast_with_the_convert_command(tiny_preset):
    weights = tiny_preset["metadata"]["weights"]
    weights["url"] = "http://127.0.0.1:9/model.weights.h5"
    weights["sha256"] = "0" * 64
    start = time.monotonic()
    with pytest.raises(PresetWeightsNotFoundError, match="--name"):
        RefineNet.from_preset(TINY_NAME)
    assert time.monotonic() - start < 30


def test_weights_download_from_url_with_checksum(tmp_path, rng, tiny_preset):
    model = _tiny_model()
    published = tmp_path / "published" / "model.weights.h5"
    published.parent.mkdir()
    model.save_weights(published)
    weights = tiny_preset["metadata"]["weights"]
    weights["url"] = published.as_uri()
    weights["sha256"] = preset_io.file_sha256(published)
    loaded = RefineNet.from_preset(TINY_NAME)
    images = _images(rng)
    np.testing.assert_allclose(loaded(images), model(images), atol=1e-6)
    cached = tmp_path / "cache" / "presets" / TINY_NAME / "model.weights.h5"
    assert cached.is_file()


def test_download_with_wrong_checksum_leaves_nothing(tmp_path, tiny_preset):
    published = tmp_path / "model.weights.h5"
    _tiny_model().save_weights(published)
    weights = tiny_preset["metadata"]["weights"]
    weights["url"] = published.as_uri()
    weights["sha256"] = "f" * 64
    with pytest.raises(preset_io.CorruptedWeightsError, match="failed"):
        RefineNet.from_preset(TINY_NAME)
    cache = tmp_path / "cache" / "presets" / TINY_NAME
    assert not cache.exists() or not any(cache.iterdir())


def test_corrupted_weights_are_reported_with_the_path(tmp_path):
    preset_dir = _tiny_model().save_to_preset(tmp_path / "preset")
    weights = preset_dir / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(preset_io.CorruptedWeightsError) as info:
        RefineNet.from_preset(preset_dir)
    assert str(weights) in str(info.value)
    assert "sha256" in str(info.value)


def test_truncated_weights_without_checksum_are_detected(tmp_path):
    preset_dir = _tiny_model().save_to_preset(tmp_path / "preset")
    metadata_path = preset_dir / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    del metadata[preset_io.SHA256_KEY]
    metadata_path.write_text(json.dumps(metadata))
    weights = preset_dir / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(preset_io.CorruptedWeightsError) as info:
        RefineNet.from_preset(preset_dir)
    assert str(weights) in str(info.value)


def test_saved_preset_records_the_weights_checksum(tmp_path):
    preset_dir = _tiny_model().save_to_preset(tmp_path / "preset")
    metadata = json.loads((preset_dir / "metadata.json").read_text())
    assert metadata[preset_io.SHA256_KEY] == preset_io.file_sha256(
        preset_dir / "model.weights.h5"
    )


def test_hub_handles_use_keras_hub_file_fetching(tmp_path, rng, monkeypatch):
    from keras_hub.src.utils import preset_utils

    model = _tiny_model()
    local = model.save_to_preset(tmp_path / "uploaded")
    fetched = []

    def fake_get_file(handle, path):
        fetched.append((handle, path))
        return str(pathlib.Path(local) / path)

    monkeypatch.setattr(preset_utils, "get_file", fake_get_file)
    loaded = RefineNet.from_preset("hf://someone/tiny_refinenet")
    images = _images(rng)
    np.testing.assert_allclose(loaded(images), model(images), atol=1e-6)
    assert ("hf://someone/tiny_refinenet", "model.weights.h5") in fetched
    assert preset_io.is_hub_handle("kaggle://a/b/keras/c")
    assert not preset_io.is_hub_handle("refinenet101_voc")


def test_light_weight_presets_are_registered():
    for depth, miou in [(50, 82.04), (101, 80.3), (152, 82.1)]:
        entry = RefineNet.presets[f"lwrefinenet{depth}_voc"]
        assert entry["metadata"]["reported_miou"] == miou
        config = entry["config"]
        assert config["adaptive_units"] == 0
        assert config["output_units"] == 0
        assert config["crp_kernel_size"] == 1
        assert config["classifier_kernel_size"] == 3
        assert (
            "light-weight-refinenet"
            in (entry["metadata"]["weights"]["how_to_get"])
        )
