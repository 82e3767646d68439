import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from keras_refinenet.cli.main import main  # noqa: E402


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    import keras

    from keras_refinenet import tiny_refinenet

    keras.utils.set_random_seed(3)
    model = tiny_refinenet(num_classes=2)
    path = tmp_path_factory.mktemp("preset")
    model.save_to_preset(path)
    return model, path


def test_export_writes_a_servable_version(preset_dir, tmp_path, capsys):
    import tensorflow as tf

    model, path = preset_dir
    base = tmp_path / "model_base"
    args = ["export", "--preset", str(path), "--output", str(base)]
    assert main([*args, "--version", "7", "--max-pixels", "2000"]) == 0
    assert (base / "7" / "saved_model.pb").is_file()
    assert "version 7" in capsys.readouterr().out
    loaded = tf.saved_model.load(str(base / "7"))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(1, 40, 48, 3), dtype=np.uint8)
    outputs = loaded.signatures["serving_default"](images=tf.constant(images))
    logits = np.asarray(model(model.preprocessor(images.astype(np.float32))))
    np.testing.assert_array_equal(outputs["class_ids"], logits.argmax(-1))
    too_large = tf.zeros((1, 50, 50, 3), tf.uint8)
    error = loaded.signatures["serving_default"](images=too_large)["error"]
    assert b"exceeds the limit of 2000 pixels" in error.numpy()[0]
    assert main([*args, "--version", "7"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_export_refuses_unknown_preset(tmp_path, capsys):
    code = main(
        ["export", "--preset", "no-such-preset", "--output", str(tmp_path)]
    )
    assert code == 2
    assert "no-such-preset" in capsys.readouterr().err
