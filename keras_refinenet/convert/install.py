"""Writing converted models as presets, or installing them in the cache."""

import pathlib
import tempfile

from keras_refinenet.models.encoders.pyramid import RESNET_BLOCKS
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
    "reported",
    "label_values",
    "void_channel",
)
# Top-level module of each encoder library's classes.
LIBRARY_MODULES = {"matconvnet": "keras_refinenet"}


def _encoder_depth(model):
    arguments = model.backbone.image_encoder_arguments
    blocks = arguments.get("stackwise_num_blocks") or arguments.get(
        "stackwise_blocks"
    )
    for depth, stage_blocks in RESNET_BLOCKS.items():
        if list(stage_blocks) == list(blocks or []):
            return depth
    return None


def _model_parts(model):
    """The model's backbone, task and converter arguments, as presets
    write them."""
    converter = model.image_converter
    preprocessor = (
        {}
        if converter is None
        else {
            "image_scale": converter.image_scale,
            "mean": converter.mean,
            "std": converter.std,
        }
    )
    return model.backbone.get_config(), model.get_config(), preprocessor


def registry_mismatches(model, name):
    """Differences between `model` and the built-in preset `name`'s config.

    Returns:
        A list of `"key: model value != preset value"` strings (empty when
        the converted model has the preset's architecture).
    """
    preset = PRESETS[name]
    problems = []
    backbone = dict(preset["backbone"])
    spec = backbone.pop("image_encoder")
    if "depth" in spec:
        depth = _encoder_depth(model)
        if depth != spec["depth"]:
            problems.append(f"backbone depth: {depth} != {spec['depth']}")
        module = model.backbone.image_encoder_config.get("module") or ""
        library = module.split(".")[0]
        expected = spec.get("library", "keras_cv")
        if library != LIBRARY_MODULES.get(expected, expected):
            problems.append(f"backbone library: {library} != {expected}")
    parts = _model_parts(model)
    expected_parts = (backbone, preset["task"], preset["preprocessor"])
    for model_config, config in zip(parts, expected_parts):
        for key, value in config.items():
            if key == "num_classes":
                continue
            actual = model_config.get(key)
            if isinstance(value, (list, tuple)) and isinstance(
                actual, (list, tuple)
            ):
                actual, value = list(actual), list(value)
            if actual != value:
                problems.append(f"{key}: {actual!r} != {value!r}")
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
