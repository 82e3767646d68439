"""A small `fit` with the training callbacks; used by the resume test.

Usage: python resumable_training.py OUTPUT_DIR EPOCHS [HANG_AT_EPOCH]

Appends one JSON line per event to OUTPUT_DIR/events.jsonl: the epoch and
weight checksum at the start of training (after any restore) and at the
end of every epoch. With HANG_AT_EPOCH, the process sleeps at the start of
that (0-based) epoch, waiting to be killed.
"""

import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""


def main(output_dir, epochs, hang_at_epoch=None):
    import keras
    import numpy as np

    from keras_refinenet.training.callbacks import training_callbacks
    from keras_refinenet.training.losses import (
        SparseCategoricalCrossentropyIgnore,
    )
    from keras_refinenet.training.metrics import MeanIoU

    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    events = output_dir / "events.jsonl"
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (16, 8, 8, 3)).astype("float32")
    masks = (images[..., 0] > 127).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.Conv2D(2, 3, padding="same"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=SparseCategoricalCrossentropyIgnore(),
        metrics=[MeanIoU(2)],
    )

    def checksum():
        return float(sum(np.abs(w).sum() for w in model.get_weights()))

    def record(**event):
        with events.open("a") as file:
            file.write(json.dumps(event) + "\n")

    def on_epoch_begin(epoch, logs=None):
        if hang_at_epoch is not None and epoch == hang_at_epoch:
            record(event="hang", epoch=epoch)
            time.sleep(600)

    marker = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: record(
            event="begin",
            initial_epoch=model._initial_epoch or 0,
            checksum=checksum(),
            iterations=int(model.optimizer.iterations.numpy()),
        ),
        on_epoch_begin=on_epoch_begin,
        on_epoch_end=lambda epoch, logs: record(
            event="epoch_end", epoch=epoch, checksum=checksum()
        ),
    )
    model.fit(
        images,
        masks,
        batch_size=4,
        epochs=epochs,
        validation_data=(images, masks),
        callbacks=training_callbacks(output_dir, tensorboard=False) + [marker],
        verbose=0,
    )
    record(event="done")


if __name__ == "__main__":
    hang = int(sys.argv[3]) if len(sys.argv) > 3 else None
    main(sys.argv[1], int(sys.argv[2]), hang)
