"""Writing converted models as presets, or installing them in the cache."""

import pathlib
import tempfile

from keras_refinenet.models.backbones import RESNET_BLOCKS
from keras_refinenet.models.preset_io import cached_preset_dir, file_sha256
from keras_refinenet.models.presets import PRESETS
from keras_refinenet.models.refinenet import RefineNet

REGISTRY_METADATA_KEYS = (
    "description",
    "backbone",
    "dataset",
    "class_names",
    "palette",
    "weights",
    "reported_miou",
)


def _backbone_depth(model):
    blocks = getattr(model.backbone, "stackwise_num_blocks", None) or (
        getattr(model.backbone, "stackwise_blocks", None)
    )
    for depth, stage_blocks in RESNET_BLOCKS.items():
        if list(stage_blocks) == list(blocks or []):
            return depth
    return None


def registry_mismatches(model, name):
    """Differences between `model` and the built-in preset `name`'s config.

    Returns:
        A list of `"key: model value != preset value"` strings (empty when
        the converted model has the preset's architecture).
    """
    config = dict(PRESETS[name]["config"])
    backbone = config.pop("backbone")
    problems = []
    depth = _backbone_depth(model)
    if depth != backbone["depth"]:
        problems.append(f"backbone depth: {depth} != {backbone['depth']}")
    library = type(model.backbone).__module__.split(".")[0]
    if library != backbone["library"]:
        problems.append(f"backbone library: {library} != {backbone['library']}")
    model_config = model.get_config()
    for key, value in config.items():
        if key in ("num_classes",):
            continue
        if model_config.get(key) != value:
            problems.append(f"{key}: {model_config.get(key)!r} != {value!r}")
    return problems


def with_num_classes(model, num_classes):
    """`model` with a new classifier for `num_classes` (others kept)."""
    if num_classes is None or num_classes == model.num_classes:
        return model
    with tempfile.TemporaryDirectory() as tmp:
        model.save_to_preset(tmp)
        return RefineNet.from_preset(tmp, num_classes=num_classes)


def save_converted(model, output=None, name=None, source=None, metadata=None):
    """Writes a converted model as a preset directory.

    Args:
        model: the converted `RefineNet`.
        output: directory to write; by default the cache directory of
            `name` (`$KERAS_REFINENET_CACHE/presets/NAME`).
        name: preset name. A built-in name must match the converted
            architecture; its metadata (classes, palette, source) is
            copied.
        source: the converted file, recorded with its sha256.
        metadata: more metadata entries.

    Returns:
        The preset directory as a `pathlib.Path`.

    Example:

    >>> save_converted(model, name="refinenet101_voc")  # doctest: +SKIP
    """
    if output is None and name is None:
        raise ValueError(
            "Give an output directory or a preset name to install. "
            "Received: output=None, name=None"
        )
    full_metadata = {}
    if name in PRESETS:
        problems = registry_mismatches(model, name)
        if problems:
            raise ValueError(
                f"The converted model does not have the architecture of the "
                f"built-in preset {name!r}: "
                + "; ".join(problems)
                + f". Received: name={name!r}"
            )
        registry = PRESETS[name]["metadata"]
        full_metadata.update(
            {
                key: registry[key]
                for key in REGISTRY_METADATA_KEYS
                if key in registry
            }
        )
    if name is not None:
        full_metadata["preset_name"] = name
    if source is not None:
        source = pathlib.Path(source)
        full_metadata["converted_from"] = {
            "file": source.name,
            "sha256": file_sha256(source),
        }
    full_metadata.update(metadata or {})
    output = pathlib.Path(output) if output else cached_preset_dir(name)
    return model.save_to_preset(output, metadata=full_metadata)
