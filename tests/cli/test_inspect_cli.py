"""`keras-refinenet inspect` and `convert matconvnet` on a tiny release."""

import numpy as np
import pytest

from keras_refinenet import RefineNet
from keras_refinenet.cli.main import main
from tests.convert.matconvnet_fixtures import NUM_CLASSES, write_release


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    path = tmp_path_factory.mktemp("release") / "tiny_release.mat"
    write_release(path, seed=11)
    return path


def test_inspect_prints_the_derived_architecture(release, capsys):
    assert main(["inspect", str(release)]) == 0
    out = capsys.readouterr().out
    assert "input scales: [1.2]" in out
    assert f"classes: {NUM_CLASSES}" in out
    assert "pooling improved x4" in out
    assert "p_ims1d2_outl1_dimred_filter" in out


def test_inspect_a_missing_file_is_one_error_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "none.mat")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_convert_writes_a_preset_that_loads(release, tmp_path, capsys):
    output = tmp_path / "preset"
    command = ["convert", "matconvnet", str(release), "--output", str(output)]
    assert main(command) == 0
    model = RefineNet.from_preset(str(output))
    assert model.backbone.interpolation == "matlab_bicubic"
    assert model.output_interpolation == "matlab_bicubic"
    image = np.random.default_rng(0).integers(0, 256, (1, 41, 57, 3))
    from keras_refinenet.convert.matconvnet import convert_matconvnet

    direct = convert_matconvnet(release)
    np.testing.assert_allclose(
        model.predict(image.astype("float32"), verbose=0),
        direct.predict(image.astype("float32"), verbose=0),
        atol=1e-5,
    )
