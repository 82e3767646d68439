"""Converted PyTorch RefineNets compute what the PyTorch reference computes.

The reference is `tests/convert/reference_pytorch.py`, written from
the authors' published architecture; weights are random with non-trivial
BatchNorm statistics, and both models see the same image (the Keras model
0..255 RGB, normalising inside; the reference the normalised tensor).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from keras_refinenet.convert.checkpoints import (  # noqa: E402
    CheckpointMismatchError,
)
from keras_refinenet.convert.light_weight_refinenet import (  # noqa: E402
    convert_light_weight_refinenet,
)
from keras_refinenet.convert.refinenet_pytorch import (  # noqa: E402
    convert_refinenet_pytorch,
    convert_state_dict,
)
from tests.convert.reference_pytorch import (  # noqa: E402
    build_reference_refinenet,
    randomize_batchnorm_,
)

from .helpers import (  # noqa: E402
    IMAGE_SIZES,
    RELATIVE_TOLERANCE,
    random_image,
    relative_error,
    state_dict_arrays,
    torch_input,
)

NUM_CLASSES = 5


def _reference(depth, light_weight, seed=0):
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_reference_refinenet(depth, NUM_CLASSES, light_weight)
    return randomize_batchnorm_(model, generator)


def _torch_logits(reference, image):
    with torch.no_grad():
        logits = reference(torch.from_numpy(torch_input(image)))
    return logits.numpy().transpose(0, 2, 3, 1)


def _converted_pair(light_weight):
    reference = _reference(50, light_weight)
    model = convert_state_dict(
        state_dict_arrays(reference),
        light_weight=light_weight,
        upsample_output=False,
    )
    return reference, model


def keras_logits(model, image):
    """Logits of raw 0..255 pixels: the preprocessor, then the network."""
    return np.asarray(model(model.preprocessor(image)))


@pytest.fixture(scope="module")
def refinenet50_pair():
    return _converted_pair(light_weight=False)


@pytest.fixture(scope="module", params=["rf", "lw"])
def converted_pair(request):
    if request.param == "rf":
        return request.getfixturevalue("refinenet50_pair")
    return _converted_pair(light_weight=True)


@pytest.mark.parametrize("size", IMAGE_SIZES, ids=["64x96", "65x97"])
def test_resnet50_logits_match_reference(converted_pair, size):
    reference, model = converted_pair
    image = random_image(*size)
    expected = _torch_logits(reference, image)
    actual = keras_logits(model, image)
    assert expected.shape == (1, (size[0] + 3) // 4, (size[1] + 3) // 4, 5)
    assert relative_error(expected, actual) < RELATIVE_TOLERANCE


def test_tolerance_detects_wrong_upsampling(refinenet50_pair):
    """Half-pixel upsampling is not what the authors use: it must fail."""
    reference, _ = refinenet50_pair
    image = random_image(65, 97)
    expected = _torch_logits(reference, image)
    state_dict = state_dict_arrays(reference)
    wrong = convert_state_dict(
        state_dict,
        upsample_output=False,
        align_corners=False,
    )
    assert relative_error(expected, keras_logits(wrong, image)) > 1e-3


def test_tolerance_detects_ignored_batchnorm_statistics(refinenet50_pair):
    reference, _ = refinenet50_pair
    image = random_image(64, 96)
    expected = _torch_logits(reference, image)
    state_dict = state_dict_arrays(reference)
    for key in state_dict:
        if key.endswith("running_mean"):
            state_dict[key] = np.zeros_like(state_dict[key])
    wrong = convert_state_dict(
        state_dict,
        upsample_output=False,
    )
    assert relative_error(expected, keras_logits(wrong, image)) > 1e-3


def test_full_size_output_is_upsampled_stride4_logits():
    reference = _reference(50, light_weight=True, seed=1)
    model = convert_light_weight_refinenet(state_dict_arrays(reference))
    image = random_image(65, 97)
    logits = keras_logits(model, image)
    assert logits.shape == (1, 65, 97, NUM_CLASSES)
    # align_corners=True: the image corners equal the stride-4 corners.
    expected = _torch_logits(reference, image)
    for row, col in [(0, 0), (-1, -1), (0, -1), (-1, 0)]:
        np.testing.assert_allclose(
            logits[0, row, col], expected[0, row, col], rtol=1e-4, atol=1e-5
        )


def test_refinenet101_logits_match_reference():
    reference = _reference(101, light_weight=False)
    model = convert_refinenet_pytorch(
        state_dict_arrays(reference), upsample_output=False
    )
    assert model.num_classes == NUM_CLASSES
    assert model.count_params() == sum(
        value.numel() for value in reference.state_dict().values()
    ) - sum(
        1
        for key in reference.state_dict()
        if key.endswith("num_batches_tracked")
    )
    for size in IMAGE_SIZES:
        image = random_image(*size, seed=3)
        expected = _torch_logits(reference, image)
        assert relative_error(expected, keras_logits(model, image)) < (
            RELATIVE_TOLERANCE
        )


@pytest.mark.parametrize("depth", [101, 152])
def test_light_weight_deep_logits_match_reference(depth):
    reference = _reference(depth, light_weight=True)
    model = convert_light_weight_refinenet(
        state_dict_arrays(reference), upsample_output=False
    )
    image = random_image(65, 97)
    expected = _torch_logits(reference, image)
    assert relative_error(expected, keras_logits(model, image)) < (
        RELATIVE_TOLERANCE
    )


def test_depth_and_classes_are_inferred():
    reference = _reference(50, light_weight=True)
    model = convert_state_dict(state_dict_arrays(reference), light_weight=True)
    assert model.num_classes == NUM_CLASSES
    arguments = model.backbone.image_encoder_arguments
    assert arguments["stackwise_num_blocks"] == [3, 4, 6, 3]


def test_light_weight_checkpoint_refused_as_refinenet():
    state_dict = state_dict_arrays(_reference(50, light_weight=True))
    with pytest.raises(CheckpointMismatchError) as info:
        convert_refinenet_pytorch(state_dict)
    message = str(info.value)
    assert "missing keys" in message
    assert "adapt_stage1_b.0.1_conv.weight" in message
    assert "shape mismatches" in message
    assert "p_ims1d2_outl1_dimred.weight: checkpoint (512, 2048, 1, 1)" in (
        message
    )


def test_extra_and_missing_keys_are_listed():
    state_dict = state_dict_arrays(_reference(50, light_weight=True))
    del state_dict["layer2.0.bn1.running_var"]
    state_dict["aux_head.weight"] = np.zeros((3,), "float32")
    with pytest.raises(CheckpointMismatchError) as info:
        convert_light_weight_refinenet(state_dict)
    message = str(info.value)
    assert "1 missing keys:\n    layer2.0.bn1.running_var" in message
    assert "1 unexpected keys:\n    aux_head.weight" in message


def test_light_weight_preset_has_the_reference_parameter_count():
    from keras_refinenet import RefineNet

    model = RefineNet.from_preset("lwrefinenet50_voc", load_weights=False)
    reference = build_reference_refinenet(50, 21, light_weight=True)
    expected = sum(p.numel() for p in reference.parameters()) + sum(
        b.numel()
        for name, b in reference.named_buffers()
        if not name.endswith("num_batches_tracked")
    )
    assert model.count_params() == expected
    # The authors' table: 27 M parameters for RF-LW-ResNet-50.
    assert round(sum(p.numel() for p in reference.parameters()) / 1e6) == 27


@pytest.mark.parametrize(
    "depth, light_weight, num_classes, millions",
    [(50, True, 21, 27), (101, True, 21, 46), (152, True, 21, 62)],
)
def test_reference_parameter_counts_match_the_authors(
    depth, light_weight, num_classes, millions
):
    """The Light-Weight RefineNet README table (params, M)."""
    reference = build_reference_refinenet(depth, num_classes, light_weight)
    count = sum(p.numel() for p in reference.parameters())
    assert round(count / 1e6) == millions


def test_reference_refinenet101_parameter_count():
    """The trainable parameter count of the authors' rf101, 19 classes."""
    reference = build_reference_refinenet(101, 19)
    assert sum(p.numel() for p in reference.parameters()) == 118_047_827
