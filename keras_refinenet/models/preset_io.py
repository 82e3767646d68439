"""Loading and saving RefineNet presets.

A preset directory holds `config.json` (the serialized model),
`metadata.json` (description, classes, palette, normalization, weight
source) and `model.weights.h5`. Named presets come from the registry in
`presets.py`; their weights are looked up in the preset cache.
"""

import copy
import json
import logging
import os
import pathlib

import keras

from keras_refinenet.models.backbones import backbone_from_spec
from keras_refinenet.models.presets import PRESETS

CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"
CACHE_ENV_VAR = "KERAS_REFINENET_CACHE"
DEFAULT_CACHE_DIR = pathlib.Path("~/.cache/keras_refinenet")
CLASSIFIER_LAYER = "classifier"

logger = logging.getLogger(__name__)


class PresetWeightsNotFoundError(FileNotFoundError):
    """Raised when a preset's weights are not on this machine."""


def cache_dir():
    """The preset cache: `$KERAS_REFINENET_CACHE` or `~/.cache/...`."""
    root = os.environ.get(CACHE_ENV_VAR) or DEFAULT_CACHE_DIR
    return pathlib.Path(root).expanduser()


def cached_preset_dir(name):
    """Where the cache keeps the preset called `name`."""
    return cache_dir() / "presets" / name


def is_preset_dir(path):
    path = pathlib.Path(path)
    return path.is_dir() and (path / CONFIG_FILE).is_file()


def preset_metadata(name_or_dir):
    """Metadata of a named preset or a preset directory."""
    if name_or_dir in PRESETS:
        metadata = copy.deepcopy(PRESETS[name_or_dir]["metadata"])
        cached = cached_preset_dir(name_or_dir)
        metadata["weights_on_disk"] = (cached / WEIGHTS_FILE).is_file()
        return metadata
    if is_preset_dir(name_or_dir):
        path = pathlib.Path(name_or_dir) / METADATA_FILE
        return json.loads(path.read_text()) if path.is_file() else {}
    raise _unknown_preset_error(name_or_dir)


def _unknown_preset_error(name_or_dir):
    return ValueError(
        "`name_or_dir` must be a built-in preset "
        f"({', '.join(sorted(PRESETS))}) or a preset directory containing "
        f"{CONFIG_FILE}. Received: name_or_dir={name_or_dir!r}"
    )


def _registry_model_config(name):
    config = copy.deepcopy(PRESETS[name]["config"])
    return config


def _build_from_registry_config(cls, config):
    config = dict(config)
    backbone_spec = config.pop("backbone")
    backbone = backbone_from_spec(backbone_spec, dtype=config.get("dtype"))
    return cls(backbone=backbone, **config)


def _read_preset_dir(path):
    path = pathlib.Path(path)
    try:
        serialized = json.loads((path / CONFIG_FILE).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"The preset config {path / CONFIG_FILE} is not valid JSON "
            f"({error}). Received: name_or_dir={str(path)!r}"
        ) from error
    return serialized


def _build_from_serialized(serialized, overrides):
    serialized = copy.deepcopy(serialized)
    serialized["config"].update(overrides)
    return keras.saving.deserialize_keras_object(serialized)


def _load_weights_file(model, weights_path):
    try:
        model.load_weights(weights_path)
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(
            f"Could not load the weights file {weights_path}: {error}. The "
            "file may be corrupted, truncated, or saved from a model with "
            "another configuration."
        ) from error


def _transfer_weights(source, target, skip_layers):
    """Copies weights layer by layer, leaving `skip_layers` untouched."""
    for layer in source.layers:
        if layer.name in skip_layers or not layer.weights:
            continue
        target.get_layer(layer.name).set_weights(layer.get_weights())


def _weights_missing_error(name, searched, metadata):
    weights = metadata.get("weights") or {}
    how_to_get = weights.get("how_to_get", "")
    lines = [
        f"The weights of preset {name!r} are not on this machine. Searched:",
        *(f"  - {path}" for path in searched),
    ]
    if weights:
        lines.append(
            f"The original checkpoint is published at {weights['source']}; "
            f"convert it once with:\n  {how_to_get}"
        )
    lines.append(
        f"Set {CACHE_ENV_VAR} to use another cache directory, or pass "
        "`load_weights=False` for a randomly initialised model."
    )
    return PresetWeightsNotFoundError("\n".join(lines))


def load_preset(cls, name_or_dir, load_weights=True, **overrides):
    """Builds a model from a named preset or a preset directory.

    See `RefineNet.from_preset` for the arguments.
    """
    name_or_dir = os.fspath(name_or_dir)
    if is_preset_dir(name_or_dir):
        preset_dir = pathlib.Path(name_or_dir)
    elif name_or_dir in PRESETS:
        cached = cached_preset_dir(name_or_dir)
        preset_dir = cached if is_preset_dir(cached) else None
    else:
        raise _unknown_preset_error(name_or_dir)

    if preset_dir is None:
        metadata = PRESETS[name_or_dir]["metadata"]
        if load_weights and metadata.get("weights"):
            raise _weights_missing_error(
                name_or_dir, [cached_preset_dir(name_or_dir)], metadata
            )
        if load_weights:
            logger.info(
                "Preset %r has no published weights; the model is randomly "
                "initialised.",
                name_or_dir,
            )
        config = _registry_model_config(name_or_dir)
        config.update(overrides)
        return _build_from_registry_config(cls, config)

    serialized = _read_preset_dir(preset_dir)
    weights_path = preset_dir / WEIGHTS_FILE
    if not load_weights:
        return _build_from_serialized(serialized, overrides)
    if not weights_path.is_file():
        raise _weights_missing_error(
            name_or_dir, [weights_path], _preset_dir_metadata(preset_dir)
        )
    saved_classes = serialized["config"].get("num_classes")
    new_classes = overrides.get("num_classes", saved_classes)
    if new_classes == saved_classes:
        model = _build_from_serialized(serialized, overrides)
        _load_weights_file(model, weights_path)
        return model
    source_overrides = {
        key: value for key, value in overrides.items() if key != "num_classes"
    }
    source = _build_from_serialized(serialized, source_overrides)
    _load_weights_file(source, weights_path)
    model = _build_from_serialized(serialized, overrides)
    _transfer_weights(source, model, skip_layers={CLASSIFIER_LAYER})
    return model


def _preset_dir_metadata(preset_dir):
    path = pathlib.Path(preset_dir) / METADATA_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def save_preset(model, preset_dir, metadata=None):
    """Writes `model` as a preset directory; see `RefineNet.save_to_preset`."""
    preset_dir = pathlib.Path(preset_dir)
    preset_dir.mkdir(parents=True, exist_ok=True)
    serialized = keras.saving.serialize_keras_object(model)
    (preset_dir / CONFIG_FILE).write_text(json.dumps(serialized, indent=2))
    full_metadata = {
        "keras_version": keras.__version__,
        "params": int(model.count_params()),
        "num_classes": model.num_classes,
        "normalization": {
            "scale": model.image_scale,
            "mean": model.image_mean,
            "std": model.image_std,
        },
    }
    full_metadata.update(metadata or {})
    (preset_dir / METADATA_FILE).write_text(json.dumps(full_metadata, indent=2))
    tmp_path = preset_dir / (WEIGHTS_FILE + ".partial.weights.h5")
    model.save_weights(tmp_path)
    os.replace(tmp_path, preset_dir / WEIGHTS_FILE)
    return preset_dir
