"""Runs a tiny segmentation `fit` under a strategy; used by the tests.

Usage: python distributed_worker.py MODE RESULT_JSON
MODE: mirrored | multi-worker | multi-worker-unpatched
"""

import contextlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

NUM_CLASSES = 3
IMAGE_SIZE = 16
GLOBAL_BATCH = 8


def _multiplier_steps(strategy):
    """Distances moved by a plain and a multiplied variable in one step."""
    import keras
    import tensorflow as tf

    from keras_refinenet.training.defaults import RefineNetSGD

    with strategy.scope():
        plain = keras.Variable([1.0])
        multiplied = keras.Variable([1.0])
        optimizer = RefineNetSGD(
            learning_rate=0.1, learning_rate_multiplier=10.0
        )
        optimizer.set_multiplied_variables([multiplied])
        optimizer.build([plain, multiplied])

    @tf.function
    def step():
        def apply():
            optimizer.apply([tf.ones(1), tf.ones(1)], [plain, multiplied])

        strategy.run(apply)

    step()
    return [float(1.0 - v.numpy()[0]) for v in (plain, multiplied)]


def main(mode, result_path):
    import tensorflow as tf

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu,
            [tf.config.LogicalDeviceConfiguration()] * 2,
        )
    from keras_refinenet.training import distribute

    if mode == "multi-worker-unpatched":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = distribute.get_strategy(mode)

    import keras
    import numpy as np

    from keras_refinenet.training.losses import (
        SparseCategoricalCrossentropyIgnore,
    )
    from keras_refinenet.training.metrics import MeanIoU, PixelAccuracy

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (32, IMAGE_SIZE, IMAGE_SIZE, 3))
    masks = (images[..., 0] > 127).astype("int32") + (
        images[..., 1] > 200
    ).astype("int32")
    masks[:, :2] = 255
    dataset = (
        tf.data.Dataset.from_tensor_slices((images.astype("float32"), masks))
        .repeat()
        .batch(GLOBAL_BATCH)
    )
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((None, None, 3)),
                keras.layers.Rescaling(1.0 / 255),
                keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                keras.layers.Dropout(0.1),
                keras.layers.Conv2D(NUM_CLASSES, 1),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=SparseCategoricalCrossentropyIgnore(),
            metrics=[MeanIoU(NUM_CLASSES), PixelAccuracy()],
        )
    fixes = (
        contextlib.nullcontext(())
        if mode == "multi-worker-unpatched"
        else distribute.keras_multi_worker_fixes(strategy)
    )
    with fixes as patched:
        history = model.fit(
            dataset,
            epochs=2,
            steps_per_epoch=2,
            validation_data=dataset,
            validation_steps=1,
            verbose=0,
        )
    per_replica, global_batch = distribute.replica_batch_sizes(
        strategy, GLOBAL_BATCH
    )
    result = {
        "multiplier_steps": _multiplier_steps(strategy),
        "replicas": strategy.num_replicas_in_sync,
        "per_replica_batch": per_replica,
        "global_batch": global_batch,
        "history": {
            key: [float(value) for value in values]
            for key, values in history.history.items()
        },
        "chief": distribute.is_chief(),
        "patched": list(patched),
    }
    with open(result_path, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
