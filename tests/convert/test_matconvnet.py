"""The MatConvNet converter against a numpy MatConvNet forward of the file.

The fixtures are tiny checkpoints in the authors' layout
(`tests/convert/matconvnet_fixtures.py`); the reference runs the DAGs the
fixture builder wrote, layer by layer, with MatConvNet's semantics
(`tests/convert/matconvnet_dag_reference.py`), and the authors' test-time
steps: MATLAB `imresize` by 1.2 with uint8 rounding, mean 128, the
classifier, `max(log softmax, -20)` resized to the image size.
"""

import keras
import numpy as np
import pytest

from keras_refinenet.convert.checkpoints import CheckpointMismatchError
from keras_refinenet.convert.matconvnet import (
    convert_matconvnet,
    released_dataset_of,
)
from keras_refinenet.convert.matconvnet_checkpoint import (
    MatconvnetCheckpointError,
)
from tests.convert.helpers import relative_error
from tests.convert.matconvnet_dag_reference import (
    authors_resize,
    conv,
    run_dag,
)
from tests.convert.matconvnet_fixtures import (
    INPUT_SCALE,
    NUM_CLASSES,
    write_legacy_folder,
    write_release,
)
from tests.layers.matlab_imresize_reference import imresize

AUTHORS_MEAN = 128.0
LOG_FLOOR = -20.0
# Odd sizes whose x1.2 resize has no exact .5 tie in the uint8 rounding.
IMAGE_SIZES = [(43, 59), (37, 53)]
TOLERANCE = 1e-4


def _builder_layers(builder):
    return [
        {
            "name": layer["name"],
            "type": layer["type"],
            "inputs": list(layer["inputs"].items),
            "outputs": list(layer["outputs"].items),
            "params": list(layer["params"].items),
            "block": layer["block"],
        }
        for layer in builder.layers
    ]


def _log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def reference_forward(fixture, image, input_scale, resize_mode="gpu"):
    """Stride-4 logits and the authors' output at the image size."""
    backbone, decoder, filters, biases = fixture
    height, width = image.shape[:2]
    if input_scale != 1.0:
        size = (
            int(np.floor(height * input_scale + 0.5)),
            int(np.floor(width * input_scale + 0.5)),
        )
        image = imresize(image, output_size=size, uint8=True)
    x = image - AUTHORS_MEAN
    features = run_dag(
        _builder_layers(backbone), dict(backbone.params), {"data": x}
    )
    outputs = [
        layer["outputs"].items[0]
        for layer in backbone.layers
        if layer["type"] in ("dagnn.DropOut", "My_copy_layer")
    ]
    # Paths are numbered from the deepest: p_ims1d2_outl1 is res5.
    feeds = {
        f"p_ims1d2_outl{path}": features[var]
        for path, var in enumerate(reversed(outputs), start=1)
    }
    values = run_dag(
        _builder_layers(decoder),
        dict(decoder.params),
        feeds,
        resize_mode=resize_mode,
    )
    final = decoder.layers[-1]["outputs"].items[0]
    logits = conv(values[final], filters, biases, pad=1)
    clamped = np.maximum(_log_softmax(logits), LOG_FLOOR)
    return logits, authors_resize(clamped, (height, width), resize_mode)


def _image_without_ties(rng, height, width, input_scale):
    """A random uint8 image whose x`input_scale` uint8 resize has no exact
    .5 tie (which float code, MATLAB's included, may round either way)."""
    size = (
        int(np.floor(height * input_scale + 0.5)),
        int(np.floor(width * input_scale + 0.5)),
    )
    for _ in range(50):
        image = rng.integers(0, 256, (height, width, 3)).astype("float64")
        if input_scale == 1.0:
            return image
        _, ties = imresize(
            image, output_size=size, uint8=True, return_ties=True
        )
        if not ties.any():
            return image
    raise AssertionError("no tie-free image found")


def _stride4_model(model):
    return keras.Model(model.input, model.get_layer("logits").output)


def _check_against_reference(model, fixture, input_scale, resize_mode="gpu"):
    rng = np.random.default_rng(7)
    for height, width in IMAGE_SIZES:
        image = _image_without_ties(rng, height, width, input_scale)
        want_logits, want_output = reference_forward(
            fixture, image, input_scale, resize_mode
        )
        batch = image[None].astype("float32")
        normalized = model.preprocess(batch)
        got_logits = np.asarray(_stride4_model(model)(normalized))[0]
        got_output = model.predict(batch, verbose=0)[0]
        assert relative_error(want_logits, got_logits) < TOLERANCE
        assert relative_error(want_output, got_output) < TOLERANCE
        assert np.mean(want_output.argmax(-1) == got_output.argmax(-1)) > 0.99


@pytest.fixture(scope="module")
def improved_release(tmp_path_factory):
    path = tmp_path_factory.mktemp("improved") / "tiny_improved.mat"
    fixture = write_release(path, seed=1)
    return path, fixture


@pytest.fixture(scope="module")
def original_release(tmp_path_factory):
    path = tmp_path_factory.mktemp("original") / "tiny_original.mat"
    fixture = write_release(
        path, seed=2, adapt_prefix="adapt_stage", improved=False
    )
    return path, fixture


def test_improved_pooling_release_matches_the_matconvnet_forward(
    improved_release,
):
    path, fixture = improved_release
    model = convert_matconvnet(path)
    backbone = model.backbone
    assert backbone.crp_conv_before_pool
    assert backbone.crp_stages == 4 and backbone.crp_pool_size == 5
    assert backbone.input_scales == [INPUT_SCALE]
    assert model.num_classes == NUM_CLASSES
    assert model.image_converter.mean == [AUTHORS_MEAN] * 3
    _check_against_reference(model, fixture, INPUT_SCALE)


def test_original_pooling_release_matches_the_matconvnet_forward(
    original_release,
):
    path, fixture = original_release
    model = convert_matconvnet(path)
    assert not model.backbone.crp_conv_before_pool
    _check_against_reference(model, fixture, INPUT_SCALE)


def test_cpu_resize_semantics(original_release):
    path, fixture = original_release
    model = convert_matconvnet(path, resize_mode="cpu")
    assert model.backbone.scale_mode == "per_axis"
    _check_against_reference(model, fixture, INPUT_SCALE, resize_mode="cpu")


def test_legacy_folder_converts(tmp_path):
    folder = tmp_path / "legacy_model"
    backbone, decoder, filters = write_legacy_folder(folder, seed=3)
    model = convert_matconvnet(folder)
    assert not model.backbone.crp_conv_before_pool
    # The legacy net-config has no input scale: the image goes in as is.
    assert model.backbone.input_scales == [1.0]
    kernel = np.asarray(model.classifier.kernel)
    np.testing.assert_array_equal(kernel, filters)


def test_a_mismatching_file_is_refused_before_loading(tmp_path):
    path = tmp_path / "tiny.mat"
    write_release(path, seed=4, stages=(4, 4, 3, 4))
    with pytest.raises(MatconvnetCheckpointError, match="pool_stages"):
        convert_matconvnet(path)


def test_metadata_from_the_authors_file_name(tmp_path):
    assert released_dataset_of("refinenet_res101_voc2012.mat") == "voc2012"
    assert released_dataset_of("refinenet_res152_ade.mat") == "ade20k"
    assert released_dataset_of("my_model.mat") is None
    path = tmp_path / "refinenet_res101_person_parts.mat"
    write_release(path, seed=5)
    # The tiny fixture has 5 classes, the Person-Parts models 7.
    with pytest.raises(CheckpointMismatchError, match="7"):
        convert_matconvnet(path)
    with pytest.raises(TypeError, match="Received"):
        convert_matconvnet(path, num_channels=3)
