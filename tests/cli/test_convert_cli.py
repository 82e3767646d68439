"""`keras-refinenet convert` and `keras-refinenet presets` end to end."""

import json

import keras
import numpy as np
import pytest

from keras_refinenet import RefineNet
from keras_refinenet.cli.main import main

torch = pytest.importorskip("torch")

from tests.convert.reference_pytorch import (  # noqa: E402
    build_reference_refinenet,
    randomize_batchnorm_,
)

RELATIVE_TOLERANCE = 1e-4
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def random_image(height, width):
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (1, height, width, 3)).astype("float32")


def torch_input(image):
    """The authors' normalisation (ImageNet mean/std on 0..1), NCHW."""
    normalized = (image / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return normalized.astype("float32").transpose(0, 3, 1, 2)


def relative_error(reference, actual):
    return float(np.abs(reference - actual).max() / np.abs(reference).max())


VOC_CLASSES = 21


@pytest.fixture(scope="module")
def light_weight_checkpoint(tmp_path_factory):
    """The authors' layout, wrapped as training scripts save it."""
    torch.manual_seed(0)
    reference = randomize_batchnorm_(
        build_reference_refinenet(50, VOC_CLASSES, light_weight=True)
    )
    wrapped = {
        "state_dict": {
            f"module.{key}": value
            for key, value in reference.state_dict().items()
        },
        "epoch": 100,
    }
    path = tmp_path_factory.mktemp("ckpt") / "rf_lw50_voc.pth"
    torch.save(wrapped, path)
    return reference, path


def test_install_under_a_name_then_from_preset(light_weight_checkpoint, capsys):
    reference, path = light_weight_checkpoint
    assert main(["presets"]) == 0
    assert "lwrefinenet50_voc" in capsys.readouterr().out
    code = main(
        [
            "convert",
            "light-weight-refinenet",
            str(path),
            "--name",
            "lwrefinenet50_voc",
        ]
    )
    assert code == 0
    assert 'from_preset("lwrefinenet50_voc")' in capsys.readouterr().out
    model = RefineNet.from_preset("lwrefinenet50_voc", upsample_output=False)
    image = random_image(65, 97)
    with torch.no_grad():
        expected = reference(torch.from_numpy(torch_input(image)))
    expected = expected.numpy().transpose(0, 2, 3, 1)
    assert relative_error(
        expected, np.asarray(model(model.preprocessor(image)))
    ) < (RELATIVE_TOLERANCE)
    assert main(["presets"]) == 0
    listing = capsys.readouterr().out
    line = next(
        row for row in listing.splitlines() if row.startswith("lwrefinenet50")
    )
    assert "on disk" in line
    other = next(
        row for row in listing.splitlines() if row.startswith("lwrefinenet101")
    )
    assert "missing" in other


def test_output_dir_with_new_num_classes(light_weight_checkpoint, tmp_path):
    _, path = light_weight_checkpoint
    output = tmp_path / "preset"
    code = main(
        [
            "convert",
            "light-weight-refinenet",
            str(path),
            "--output",
            str(output),
            "--num-classes",
            "4",
        ]
    )
    assert code == 0
    metadata = json.loads((output / "metadata.json").read_text())
    assert metadata["num_classes"] == 4
    assert metadata["converted_from"]["file"] == "rf_lw50_voc.pth"
    assert RefineNet.from_preset(output).num_classes == 4


def test_wrong_converter_lists_the_mismatches(
    light_weight_checkpoint, tmp_path, capsys
):
    _, path = light_weight_checkpoint
    code = main(
        ["convert", "refinenet-pytorch", str(path), "--output", str(tmp_path)]
    )
    assert code == 1
    error = capsys.readouterr().err
    assert "missing keys" in error
    assert "adapt_stage1_b.0.1_conv.weight" in error


def test_architecture_must_match_a_builtin_name(
    light_weight_checkpoint, capsys
):
    _, path = light_weight_checkpoint
    code = main(
        [
            "convert",
            "light-weight-refinenet",
            str(path),
            "--name",
            "refinenet101_voc",
        ]
    )
    assert code == 1
    assert "does not have the architecture" in capsys.readouterr().err


def test_code_running_checkpoint_is_refused(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("this must never be printed",))

    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": Payload()}, path)
    code = main(
        ["convert", "refinenet-pytorch", str(path), "--output", str(tmp_path)]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "Refused to load" in captured.err
    assert "never be printed" not in captured.out


def test_imagenet_from_a_keras_applications_weights_file(tmp_path):
    source = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(None, None, 3)
    )
    weights = tmp_path / "resnet50.weights.h5"
    source.save_weights(weights)
    output = tmp_path / "preset"
    code = main(
        [
            "convert",
            "imagenet",
            str(weights),
            "--depth",
            "50",
            "--num-classes",
            "3",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    model = RefineNet.from_preset(output)
    assert model.image_scale == 1.0
    kernel = model.backbone.image_encoder.get_layer(
        "v2_stack_3_block3_2_conv"
    ).kernel
    np.testing.assert_array_equal(
        np.asarray(kernel),
        np.asarray(source.get_layer("conv5_block3_2_conv").kernel),
    )
    stem = np.asarray(
        model.backbone.image_encoder.get_layer("conv1_conv").kernel
    )
    np.testing.assert_array_equal(
        stem, np.asarray(source.get_layer("conv1_conv").kernel)[:, :, ::-1]
    )


def test_checkpoint_and_destination_are_required(capsys):
    assert main(["convert", "matconvnet", "--output", "x"]) == 2
    assert main(["convert", "imagenet"]) == 2
    assert "--output DIR or --name" in capsys.readouterr().err
