import json
import subprocess
import sys
import textwrap

import keras
import pytest

from keras_refinenet.data import datasets
from keras_refinenet.models.demo import build_demo_model
from keras_refinenet.training import trainer


class _BuildStopped(RuntimeError):
    pass


def test_unknown_steps_per_epoch_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "dataset_size", lambda dataset: None)
    config = trainer.TrainConfig(
        output=str(tmp_path),
        crop_size=(32, 32),
        synthetic_train_images=4,
        synthetic_val_images=2,
    )
    with pytest.raises(ValueError, match="Received: steps_per_epoch=None"):
        trainer.run_training(config, build_model=lambda n: None)


def test_unknown_dataset_is_named(tmp_path):
    config = trainer.TrainConfig(output=str(tmp_path), dataset="coco")
    with pytest.raises(ValueError, match="Received: dataset='coco'"):
        trainer.run_training(config)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_the_global_dtype_policy_is_restored_after_the_run(tmp_path, policy):
    seen = {}

    def build_model(num_classes):
        seen["policy"] = keras.config.dtype_policy().name
        seen["num_classes"] = num_classes
        raise _BuildStopped

    keras.config.set_dtype_policy("float32")
    config = trainer.TrainConfig(
        output=str(tmp_path), mixed_precision=policy, crop_size=(32, 32)
    )
    with pytest.raises(_BuildStopped):
        trainer.run_training(config, build_model=build_model)
    assert seen == {"policy": policy, "num_classes": 4}
    assert keras.config.dtype_policy().name == "float32"


def test_a_finished_run_restores_the_dtype_policy(tmp_path):
    keras.config.set_dtype_policy("float32")
    result = trainer.run_training(
        trainer.TrainConfig(
            preset=None,
            output=str(tmp_path),
            epochs=1,
            steps_per_epoch=1,
            batch_size=2,
            crop_size=(32, 32),
            mixed_precision="mixed_bfloat16",
            validation_steps=0,
            synthetic_train_images=2,
            synthetic_image_size=32,
            tensorboard=False,
            jit_compile=False,
            verbose=0,
        ),
        build_model=build_demo_model,
    )
    assert keras.config.dtype_policy().name == "float32"
    metadata = json.loads(
        (tmp_path / trainer.PRESET_DIR_NAME / "metadata.json").read_text()
    )
    assert metadata["training"]["precision"] == "mixed_bfloat16"
    assert result["preset_dir"] is not None


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from keras_refinenet.models.demo import build_demo_model
    from keras_refinenet.training.trainer import TrainConfig, run_training
    result = run_training(
        TrainConfig(
            preset=None, output=sys.argv[1], dataset="synthetic",
            epochs=1, steps_per_epoch=2, batch_size=4, crop_size=(32, 32),
            strategy="mirrored", synthetic_train_images=8,
            synthetic_val_images=4, synthetic_image_size=32, verbose=2,
        ),
        build_model=build_demo_model,
    )
    print(json.dumps({k: result[k] for k in ("replicas", "preset_dir")}))
    """
)


@pytest.mark.large
def test_run_training_with_mirrored_strategy_on_two_cpus(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "replicas=2, per-replica batch=2, global batch=4" in completed.stdout
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert (tmp_path / "run" / "preset" / "model.weights.h5").is_file()
