"""Loading and saving RefineNet presets.

A preset directory holds `config.json` (the serialized model),
`metadata.json` (description, classes, palette, normalization, weight
source, the weights' sha256) and `model.weights.h5`.

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

from keras_refinenet.models.backbones import backbone_from_spec
from keras_refinenet.models.presets import PRESETS

CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "model.weights.h5"
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
    try:
        get_file(handle, METADATA_FILE)
    except FileNotFoundError:
        logger.info("Preset %s has no %s.", handle, METADATA_FILE)
    if load_weights:
        get_file(handle, WEIGHTS_FILE)
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


def _load_weights_file(model, weights_path, sha256=None):
    verify_weights_file(weights_path, sha256)
    try:
        model.load_weights(weights_path)
    except (OSError, ValueError, KeyError) as error:
        raise CorruptedWeightsError(
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


def load_preset(cls, name_or_dir, load_weights=True, **overrides):
    """Builds a model from a preset directory, hub handle or preset name.

    See `RefineNet.from_preset` for the arguments and the module docstring
    for the resolution order.
    """
    name_or_dir = os.fspath(name_or_dir)
    if is_preset_dir(name_or_dir):
        return _load_preset_dir(
            pathlib.Path(name_or_dir), name_or_dir, load_weights, overrides
        )
    if is_hub_handle(name_or_dir):
        preset_dir = fetch_hub_preset(name_or_dir, load_weights)
        return _load_preset_dir(
            preset_dir, name_or_dir, load_weights, overrides
        )
    if name_or_dir not in PRESETS:
        raise _unknown_preset_error(name_or_dir)

    name = name_or_dir
    cached = cached_preset_dir(name)
    metadata = PRESETS[name]["metadata"]
    if not load_weights:
        if is_preset_dir(cached):
            return _load_preset_dir(cached, name, False, overrides)
        return _build_named(cls, name, overrides)
    if not metadata.get("weights"):
        if is_preset_dir(cached):
            return _load_preset_dir(cached, name, True, overrides)
        logger.info(
            "Preset %r has no published weights; the model is randomly "
            "initialised.",
            name,
        )
        return _build_named(cls, name, overrides)
    weights_path, sha256, searched = resolve_named_weights(name)
    if weights_path is None:
        raise _weights_missing_error(name, searched, metadata)
    if is_preset_dir(cached):
        return _load_preset_dir(cached, name, True, overrides)
    source = _build_named(cls, name, _without_classes(overrides))
    return _load_into(
        source,
        weights_path,
        sha256,
        overrides,
        lambda: _build_named(cls, name, overrides),
    )


def _without_classes(overrides):
    return {k: v for k, v in overrides.items() if k != "num_classes"}


def _build_named(cls, name, overrides):
    config = _registry_model_config(name)
    config.update(overrides)
    return _build_from_registry_config(cls, config)


def _load_into(source, weights_path, sha256, overrides, build_target):
    """Loads weights into `source`; rebuilds the classifier if needed."""
    _load_weights_file(source, weights_path, sha256)
    new_classes = overrides.get("num_classes", source.num_classes)
    if new_classes == source.num_classes:
        return source
    target = build_target()
    _transfer_weights(source, target, skip_layers={CLASSIFIER_LAYER})
    return target


def _load_preset_dir(preset_dir, name, load_weights, overrides):
    serialized = _read_preset_dir(preset_dir)
    if not load_weights:
        return _build_from_serialized(serialized, overrides)
    weights_path = preset_dir / WEIGHTS_FILE
    metadata = _preset_dir_metadata(preset_dir)
    if not weights_path.is_file():
        if name in PRESETS:
            metadata = {**PRESETS[name]["metadata"], **metadata}
        raise _weights_missing_error(name, [weights_path], metadata)
    source = _build_from_serialized(serialized, _without_classes(overrides))
    return _load_into(
        source,
        weights_path,
        metadata.get(SHA256_KEY),
        overrides,
        lambda: _build_from_serialized(serialized, overrides),
    )


def _preset_dir_metadata(preset_dir):
    path = pathlib.Path(preset_dir) / METADATA_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def save_preset(model, preset_dir, metadata=None):
    """Writes `model` as a preset directory; see `RefineNet.save_to_preset`."""
    preset_dir = pathlib.Path(preset_dir)
    preset_dir.mkdir(parents=True, exist_ok=True)
    serialized = keras.saving.serialize_keras_object(model)
    # A preset is an architecture and weights, not a training state.
    serialized.pop("compile_config", None)
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
    tmp_path = preset_dir / (WEIGHTS_FILE + ".partial.weights.h5")
    model.save_weights(tmp_path)
    full_metadata[SHA256_KEY] = file_sha256(tmp_path)
    (preset_dir / METADATA_FILE).write_text(json.dumps(full_metadata, indent=2))
    os.replace(tmp_path, preset_dir / WEIGHTS_FILE)
    return preset_dir
