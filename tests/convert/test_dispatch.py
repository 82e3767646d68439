"""`convert_checkpoint`: each format reaches its converter with its options."""

import importlib
import types

import pytest

from keras_refinenet.convert.checkpoints import UnsafeCheckpointError
from keras_refinenet.convert.dispatch import (
    CHECKPOINT_FORMATS,
    CONVERSION_ERRORS,
    check_conversion_request,
    convert_checkpoint,
    converted_metadata,
)

# importlib: the package exports functions named like two of its modules.
imagenet = importlib.import_module("keras_refinenet.convert.imagenet")
install = importlib.import_module("keras_refinenet.convert.install")
light_weight = importlib.import_module(
    "keras_refinenet.convert.light_weight_refinenet"
)
matconvnet = importlib.import_module("keras_refinenet.convert.matconvnet")
refinenet_pytorch = importlib.import_module(
    "keras_refinenet.convert.refinenet_pytorch"
)


@pytest.fixture
def calls(monkeypatch):
    """Replaces every converter by a recorder returning a fake model."""
    recorded = []

    def recorder(name):
        def convert(*args, **kwargs):
            recorded.append((name, args, kwargs))
            return types.SimpleNamespace(converter=name, num_classes=7)

        return convert

    for module, name in (
        (refinenet_pytorch, "convert_refinenet_pytorch"),
        (light_weight, "convert_light_weight_refinenet"),
        (matconvnet, "convert_matconvnet"),
        (imagenet, "applications_resnet"),
        (imagenet, "imagenet_refinenet"),
        (imagenet, "keras_hub_refinenet"),
    ):
        monkeypatch.setattr(module, name, recorder(name))

    def new_classifier(model, num_classes):
        recorded.append(("with_num_classes", (num_classes,), {}))
        return model

    monkeypatch.setattr(install, "with_num_classes", new_classifier)
    return recorded


def test_the_formats_are_the_four_converters():
    assert CHECKPOINT_FORMATS == (
        "refinenet-pytorch",
        "light-weight-refinenet",
        "matconvnet",
        "imagenet",
    )


@pytest.mark.parametrize(
    "checkpoint_format, converter",
    [
        ("refinenet-pytorch", "convert_refinenet_pytorch"),
        ("light-weight-refinenet", "convert_light_weight_refinenet"),
    ],
)
def test_pytorch_formats_pass_the_file_and_depth(
    calls, checkpoint_format, converter
):
    model = convert_checkpoint(checkpoint_format, "a.pth", depth=152)
    assert model.converter == converter
    assert calls[0] == (converter, ("a.pth",), {"depth": 152})
    assert calls[1] == ("with_num_classes", (None,), {})


def test_matconvnet_passes_dataset_and_resize_mode(calls):
    convert_checkpoint(
        "matconvnet",
        "refinenet_res101_voc2012.mat",
        depth=101,
        num_classes=5,
        dataset="voc2012",
        resize_mode="cpu",
    )
    assert calls[0] == (
        "convert_matconvnet",
        ("refinenet_res101_voc2012.mat",),
        {"depth": 101, "dataset": "voc2012", "resize_mode": "cpu"},
    )
    assert calls[1] == ("with_num_classes", (5,), {})


def test_imagenet_defaults_to_resnet101_with_21_classes(calls):
    convert_checkpoint("imagenet")
    assert calls[0] == ("applications_resnet", (101,), {"weights": "imagenet"})
    name, args, kwargs = calls[1]
    assert (name, args) == ("imagenet_refinenet", (101, 21))
    assert kwargs["source"].converter == "applications_resnet"


def test_imagenet_weights_file_depth_and_classes(calls):
    convert_checkpoint("imagenet", "r50.weights.h5", depth=50, num_classes=3)
    assert calls[0] == (
        "applications_resnet",
        (50,),
        {"weights": "r50.weights.h5"},
    )
    assert calls[1][:2] == ("imagenet_refinenet", (50, 3))


def test_imagenet_from_a_keras_hub_preset(calls):
    convert_checkpoint("imagenet", keras_hub_preset="resnet_50", num_classes=4)
    assert calls[0] == ("keras_hub_refinenet", ("resnet_50", 4), {})


def test_unknown_format_and_missing_checkpoint_are_refused(calls):
    with pytest.raises(ValueError, match="Received: checkpoint_format='tf'"):
        convert_checkpoint("tf", "model.ckpt")
    for checkpoint_format in CHECKPOINT_FORMATS[:3]:
        with pytest.raises(ValueError, match="Received: checkpoint=None"):
            check_conversion_request(checkpoint_format)
    check_conversion_request("imagenet")
    assert calls == []


def test_conversion_errors_are_the_user_errors():
    assert UnsafeCheckpointError in CONVERSION_ERRORS
    assert ValueError in CONVERSION_ERRORS
    assert RuntimeError not in CONVERSION_ERRORS


def test_converted_metadata_keeps_the_release_facts():
    model = types.SimpleNamespace(matconvnet_metadata={"dataset": "voc2012"})
    assert converted_metadata(model, "matconvnet") == {
        "dataset": "voc2012",
        "converted_with": "keras-refinenet convert matconvnet",
    }
