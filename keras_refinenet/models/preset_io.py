"""Loading and saving RefineNet presets.

A preset directory is a keras-hub preset: `config.json` (the serialized
`RefineNetBackbone`), `model.weights.h5` (its weights), `task.json` and
`task.weights.h5` (the `RefineNetImageSegmenter` and its head's weights),
`preprocessor.json` and `metadata.json` (keras-hub's entries plus the
description, classes, palette, normalization, weight source and the
weights' sha256). Directories written before the keras-hub family (a flat
`RefineNet` `config.json` and one `model.weights.h5`) still load.

`from_preset(name_or_dir)` resolves, in this order:
1. an explicit local preset directory;
2. a `hf://` or `kaggle://` handle of an uploaded preset (fetched with
   keras-hub's preset utilities, like keras-hub models);
3. a built-in preset name: its weights come from the cache directory
   (`$KERAS_REFINENET_CACHE/presets/NAME`), then from a download URL with a
   sha256 checksum where the registry knows one. Otherwise the error comes
   at once and gives the command that converts the official checkpoint.

A weights file whose sha256 differs from the recorded one, or that HDF5
cannot open (e.g. truncated), is reported with its path before any weight
is loaded.
"""

import copy
import hashlib
import json
import logging
import os
import pathlib
import shutil
import tempfile
import urllib.request

import keras

from keras_refinenet.models.encoders.pyramid import encoder_from_spec
from keras_refinenet.models.refinenet.refinenet_presets import (
    PRESETS,
    split_refinenet_config,
)

CONFIG_FILE = "config.json"
TASK_CONFIG_FILE = "task.json"
PREPROCESSOR_CONFIG_FILE = "preprocessor.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"
TASK_WEIGHTS_FILE = "task.weights.h5"
TASK_SHA256_KEY = "task_weights_sha256"
# The class of the flat `config.json` of releases before the family.
LEGACY_CLASS_NAME = "RefineNet"
FLOAT_POLICIES = ("float16", "bfloat16", "float32", "float64")
CACHE_ENV_VAR = "KERAS_REFINENET_CACHE"
DEFAULT_CACHE_DIR = pathlib.Path("~/.cache/keras_refinenet")
CLASSIFIER_LAYER = "classifier"
HUB_SCHEMES = ("hf://", "kaggle://")
SHA256_KEY = "weights_sha256"
DOWNLOAD_TIMEOUT_S = 20
HASH_CHUNK_BYTES = 1 << 20

logger = logging.getLogger(__name__)


class PresetWeightsNotFoundError(FileNotFoundError):
    """Raised when a preset's weights are not on this machine."""


class CorruptedWeightsError(ValueError):
    """Raised when a weights file fails its checksum or cannot be read."""


def file_sha256(path):
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(HASH_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_weights_file(path, sha256=None):
    """Raises `CorruptedWeightsError` unless `path` is a sound weights file.

    Args:
        path: a `.weights.h5` file.
        sha256: the expected hex digest, checked when given.
    """
    import h5py

    path = pathlib.Path(path)
    if sha256:
        actual = file_sha256(path)
        if actual != sha256.lower():
            raise CorruptedWeightsError(
                f"The weights file {path} is corrupted or incomplete: its "
                f"sha256 is {actual}, expected {sha256}. Delete it and "
                "convert or download it again."
            )
    try:
        with h5py.File(path, "r") as file:
            file.visit(lambda name: None)
    except OSError as error:
        raise CorruptedWeightsError(
            f"The weights file {path} cannot be read as HDF5 ({error}); it "
            "is probably truncated or corrupted. Delete it and convert or "
            "download it again."
        ) from error


def is_hub_handle(name_or_dir):
    """Whether `name_or_dir` is a `hf://` or `kaggle://` preset handle."""
    return isinstance(name_or_dir, str) and name_or_dir.startswith(HUB_SCHEMES)


def fetch_hub_preset(handle, load_weights=True):
    """Fetches an uploaded preset and returns its local directory.

    Uses keras-hub's preset utilities, which need `huggingface_hub` for
    `hf://` and `kagglehub` for `kaggle://` handles.

    Args:
        handle: e.g. `"hf://user/refinenet101_voc"`.
        load_weights: also fetch `model.weights.h5`.

    Returns:
        The directory holding the fetched files.
    """
    from keras_hub.src.utils.preset_utils import get_file

    config_path = pathlib.Path(get_file(handle, CONFIG_FILE))
    optional = [TASK_CONFIG_FILE, PREPROCESSOR_CONFIG_FILE, METADATA_FILE]
    if load_weights:
        get_file(handle, WEIGHTS_FILE)
        optional.append(TASK_WEIGHTS_FILE)
    for name in optional:
        try:
            get_file(handle, name)
        except FileNotFoundError:
            logger.info("Preset %s has no %s.", handle, name)
    return config_path.parent


def cache_dir():
    """The preset cache: `$KERAS_REFINENET_CACHE` or `~/.cache/...`."""
    root = os.environ.get(CACHE_ENV_VAR) or DEFAULT_CACHE_DIR
    return pathlib.Path(root).expanduser()


def cached_preset_dir(name):
    """Where the cache keeps the preset called `name`."""
    return cache_dir() / "presets" / name


def is_preset_dir(path):
    """Whether `path` is a directory holding a preset's `config.json`.

    Args:
        path: a path-like object.

    Returns:
        `True` for a preset directory written by `save_to_preset`.

    Example:

    >>> is_preset_dir("/nonexistent")
    False
    """
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


def _load_weights_file(model, weights_path, sha256=None, **options):
    verify_weights_file(weights_path, sha256)
    try:
        keras.saving.load_weights(model, weights_path, **options)
    except (OSError, ValueError, KeyError) as error:
        raise CorruptedWeightsError(
            f"Could not load the weights file {weights_path}: {error}. The "
            "file may be corrupted, truncated, or saved from a model with "
            "another configuration."
        ) from error


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
        if weights.get("note"):
            lines.append(weights["note"])
    lines.append(
        f"Set {CACHE_ENV_VAR} to use another cache directory, or pass "
        "`load_weights=False` for a randomly initialised model."
    )
    return PresetWeightsNotFoundError("\n".join(lines))


def download_weights(url, destination, sha256):
    """Downloads `url` to `destination`, checking its sha256 first.

    The file is written next to `destination` and moved into place only
    after the checksum matched, so an interrupted download never leaves a
    partial weights file behind.

    Args:
        url: where the weights are published (any `urllib` URL).
        destination: the final path of the weights file.
        sha256: the expected hex digest (required).

    Returns:
        `destination` as a `pathlib.Path`.
    """
    if not sha256:
        raise ValueError(
            "Refusing to download weights without a sha256 checksum. "
            f"Received: url={url!r}, sha256={sha256!r}"
        )
    destination = pathlib.Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(
        dir=destination.parent, suffix=".partial"
    )
    try:
        with (
            os.fdopen(handle, "wb") as file,
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
        ):
            shutil.copyfileobj(response, file)
        try:
            verify_weights_file(partial, sha256)
        except CorruptedWeightsError as error:
            raise CorruptedWeightsError(
                f"The weights downloaded from {url} failed their check; "
                f"nothing was written to {destination}. {error}"
            ) from error
        os.replace(partial, destination)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return destination


def resolve_named_weights(name):
    """The weights file of a built-in preset, or `(None, searched)`.

    Looks in the cache, then downloads from the registry's URL (checked
    against its sha256) where one is known.

    Returns:
        `(path, sha256, searched)`: the weights path or `None`, the
        checksum to verify it against, and the places searched.
    """
    metadata = PRESETS[name]["metadata"]
    weights = metadata.get("weights") or {}
    cached = cached_preset_dir(name) / WEIGHTS_FILE
    searched = [cached]
    if cached.is_file():
        sha256 = _preset_dir_metadata(cached.parent).get(SHA256_KEY)
        return cached, sha256 or weights.get("sha256"), searched
    url, sha256 = weights.get("url"), weights.get("sha256")
    if url and sha256:
        searched.append(url)
        try:
            return download_weights(url, cached, sha256), sha256, searched
        except OSError as error:
            logger.warning("Could not download %s: %s", url, error)
    return None, None, searched


def _json_file(path):
    try:
        return json.loads(pathlib.Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"The preset file {path} is not valid JSON ({error}). "
            f"Received: name_or_dir={str(pathlib.Path(path).parent)!r}"
        ) from error


def load_preset(cls, name_or_dir, load_weights=True, **overrides):
    """Builds a model from a preset directory, hub handle or preset name.

    See `RefineNet.from_preset` for the arguments and the module docstring
    for the resolution order.
    """
    name_or_dir = os.fspath(name_or_dir)
    if is_preset_dir(name_or_dir):
        return _load_preset_dir(
            cls, pathlib.Path(name_or_dir), name_or_dir, load_weights, overrides
        )
    if is_hub_handle(name_or_dir):
        preset_dir = fetch_hub_preset(name_or_dir, load_weights)
        return _load_preset_dir(
            cls, preset_dir, name_or_dir, load_weights, overrides
        )
    if name_or_dir not in PRESETS:
        raise _unknown_preset_error(name_or_dir)

    name = name_or_dir
    cached = cached_preset_dir(name)
    if is_preset_dir(cached):
        return _load_preset_dir(cls, cached, name, load_weights, overrides)
    metadata = PRESETS[name]["metadata"]
    if not load_weights or not metadata.get("weights"):
        if load_weights:
            logger.info(
                "Preset %r has no published weights; the model is randomly "
                "initialised.",
                name,
            )
        return build_named(cls, name, overrides)
    weights_path, sha256, searched = resolve_named_weights(name)
    if weights_path is None:
        raise _weights_missing_error(name, searched, metadata)
    model = build_named(cls, name, overrides)
    # A bare weights file holds the whole task's weights.
    _load_weights_file(
        model,
        weights_path,
        sha256,
        objects_to_skip=_new_head(model, PRESETS[name]["config"], overrides),
    )
    return model


def _new_head(model, task_config, overrides):
    """The classifier to skip when loading, if `num_classes` changed."""
    num_classes = overrides.get("num_classes")
    if num_classes is None or num_classes == task_config.get("num_classes"):
        return None
    return [model.classifier]


def _new_classes_drop_labels(saved_task, task_overrides):
    """A `num_classes` override also drops the saved class semantics
    (`void_channel`, `label_values`) unless they are given too."""
    new_classes = task_overrides.get("num_classes")
    if new_classes is None or new_classes == saved_task.get("num_classes"):
        return task_overrides
    return {"void_channel": None, "label_values": None, **task_overrides}


def build_named(cls, name, overrides=None):
    """Builds the built-in preset `name` (random weights), offline.

    Args:
        cls: the task class.
        name: a key of `PRESETS`.
        overrides: arguments to change (see `RefineNet.from_preset`).

    Returns:
        The task.
    """
    backbone, task, converter = split_refinenet_config(PRESETS[name]["config"])
    return build_from_parts(cls, backbone, task, converter, overrides or {})


def build_from_parts(cls, backbone_config, task_config, converter, overrides):
    """Builds a task from plain backbone, task and converter arguments.

    Args:
        cls: the task class.
        backbone_config: `RefineNetBackbone` arguments; `image_encoder` is
            an encoder spec or a serialized encoder.
        task_config: task arguments (`num_classes`, ...).
        converter: `RefineNetImageConverter` arguments.
        overrides: flat arguments overriding any of them, plus `dtype` and
            `preprocessor`.

    Returns:
        The task.
    """
    from keras_refinenet.models.refinenet.refinenet_backbone import (
        RefineNetBackbone,
    )
    from keras_refinenet.models.refinenet.refinenet_image_segmenter import (
        build_preprocessor,
    )

    overrides = dict(overrides)
    dtype = overrides.pop("dtype", None)
    preprocessor = overrides.pop("preprocessor", None)
    compile_model = overrides.pop("compile", False)
    backbone_overrides, task_overrides, converter_overrides = (
        split_refinenet_config(overrides)
    )
    task_overrides = _new_classes_drop_labels(task_config, task_overrides)
    backbone_config = {**backbone_config, **backbone_overrides}
    backbone_config.pop("dtype", None)
    encoder = backbone_config.pop("image_encoder")
    if isinstance(encoder, dict):
        encoder = encoder_from_spec(encoder, dtype=dtype)
    backbone = RefineNetBackbone(
        image_encoder=encoder, dtype=dtype, **backbone_config
    )
    if preprocessor is None:
        preprocessor = build_preprocessor(
            **{**converter, **converter_overrides}
        )
    return cls(
        backbone=backbone,
        preprocessor=preprocessor,
        compile=compile_model,
        **{**task_config, **task_overrides},
    )


def _is_legacy(preset_dir, config):
    return (
        config.get("class_name") == LEGACY_CLASS_NAME
        and not (preset_dir / TASK_CONFIG_FILE).is_file()
    )


def _load_preset_dir(cls, preset_dir, name, load_weights, overrides):
    config = _json_file(preset_dir / CONFIG_FILE)
    metadata = _preset_dir_metadata(preset_dir)
    weights_path = preset_dir / WEIGHTS_FILE
    if load_weights and not weights_path.is_file():
        if name in PRESETS:
            metadata = {**PRESETS[name]["metadata"], **metadata}
        raise _weights_missing_error(name, [weights_path], metadata)
    if _is_legacy(preset_dir, config):
        return _load_legacy_dir(
            cls, config, weights_path, metadata, load_weights, overrides
        )
    task_path = preset_dir / TASK_CONFIG_FILE
    if not task_path.is_file():
        raise ValueError(
            f"The preset directory {preset_dir} has no {TASK_CONFIG_FILE}: "
            "it holds a backbone only. Load it with "
            "`RefineNetBackbone.from_preset`, or build a task on it. "
            f"Received: name_or_dir={str(name)!r}"
        )
    task_config = _json_file(task_path)
    model = _deserialize_task(task_config, overrides)
    if load_weights:
        _load_weights_file(
            model.backbone, weights_path, metadata.get(SHA256_KEY)
        )
        task_weights = preset_dir / TASK_WEIGHTS_FILE
        saved_classes = task_config["config"].get("num_classes")
        new_classes = overrides.get("num_classes", saved_classes)
        if task_weights.is_file() and new_classes == saved_classes:
            verify_weights_file(task_weights, metadata.get(TASK_SHA256_KEY))
            try:
                model.load_task_weights(str(task_weights))
            except (OSError, ValueError, KeyError) as error:
                raise CorruptedWeightsError(
                    f"Could not load the weights file {task_weights}: {error}."
                ) from error
    return model


def _deserialize_task(task_config, overrides):
    """The task of `task.json` with `overrides` applied to its parts."""
    from keras_refinenet.models.refinenet.refinenet_image_segmenter import (
        build_preprocessor,
    )

    task_config = copy.deepcopy(task_config)
    overrides = dict(overrides)
    preprocessor = overrides.pop("preprocessor", None)
    config = task_config["config"]
    backbone_config = config["backbone"]["config"]
    dtype = _resolve_dtype(
        backbone_config.get("dtype"), overrides.pop("dtype", None)
    )
    backbone_overrides, task_overrides, converter_overrides = (
        split_refinenet_config(overrides)
    )
    backbone_config.update(backbone_overrides)
    if dtype is not None:
        backbone_config["dtype"] = keras.dtype_policies.serialize(
            keras.dtype_policies.get(dtype)
        )
    config.update(_new_classes_drop_labels(config, task_overrides))
    if "compile" in overrides:
        config["compile"] = overrides["compile"]
    model = keras.saving.deserialize_keras_object(task_config)
    if preprocessor is not None:
        model.preprocessor = preprocessor
    elif converter_overrides:
        converter = model.image_converter
        current = (
            {}
            if converter is None
            else {
                "image_scale": converter.image_scale,
                "mean": converter.mean,
                "std": converter.std,
            }
        )
        model.preprocessor = build_preprocessor(
            **{**current, **converter_overrides}
        )
    return model


def _resolve_dtype(saved, requested):
    """keras-hub's rule: the requested policy, else the saved one unless it
    is a plain float policy, which follows the global policy."""
    if requested is not None:
        return requested
    if isinstance(saved, dict):
        name = saved.get("config", {}).get("name", "")
        if name in FLOAT_POLICIES:
            return keras.config.dtype_policy()
        return keras.dtype_policies.deserialize(saved)
    return None


def legacy_layout(model):
    """`model`'s layers in the functional graph of the pre-family
    `RefineNet`, whose weights files name variables by that graph."""
    images = keras.Input(shape=(None, None, 3), name="images")
    features = model.backbone.refine(images)
    logits = model.head(features, images, model.upsample_output)
    return keras.Model(images, logits, name="legacy_refinenet")


def _load_legacy_dir(
    cls, config, weights_path, metadata, load_weights, overrides
):
    flat = dict(config["config"])
    saved_dtype = flat.pop("dtype", None)
    backbone_config, task_config, converter = split_refinenet_config(flat)
    overrides = dict(overrides)
    overrides["dtype"] = _resolve_dtype(saved_dtype, overrides.get("dtype"))
    model = build_from_parts(
        cls, backbone_config, task_config, converter, overrides
    )
    if load_weights:
        _load_weights_file(
            legacy_layout(model),
            weights_path,
            metadata.get(SHA256_KEY),
            objects_to_skip=_new_head(model, task_config, overrides),
        )
    return model


def _preset_dir_metadata(preset_dir):
    path = pathlib.Path(preset_dir) / METADATA_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def save_preset(model, preset_dir, metadata=None, max_shard_size=10):
    """Writes `model` as a keras-hub preset directory, with our metadata.

    See `RefineNet.save_to_preset`.
    """
    import keras_hub

    preset_dir = pathlib.Path(preset_dir)
    preset_dir.mkdir(parents=True, exist_ok=True)
    keras_hub.models.ImageSegmenter.save_to_preset(
        model, str(preset_dir), max_shard_size=max_shard_size
    )
    full_metadata = _preset_dir_metadata(preset_dir)
    full_metadata.update(
        {
            "params": int(model.count_params()),
            "num_classes": model.num_classes,
            "normalization": {
                "scale": model.image_scale,
                "mean": model.image_mean,
                "std": model.image_std,
            },
        }
    )
    full_metadata.update(metadata or {})
    for key, file_name in (
        (SHA256_KEY, WEIGHTS_FILE),
        (TASK_SHA256_KEY, TASK_WEIGHTS_FILE),
    ):
        if (preset_dir / file_name).is_file():
            full_metadata[key] = file_sha256(preset_dir / file_name)
    (preset_dir / METADATA_FILE).write_text(json.dumps(full_metadata, indent=2))
    return preset_dir
