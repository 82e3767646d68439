"""The checks of `test_backends.py`, run in one process per Keras backend.

`python backend_checks.py PRESETS_DIR OUT_DIR` (with `KERAS_BACKEND` set)
loads the tiny presets that the test wrote under TensorFlow, runs every
check and writes `OUT_DIR/results.json` and `OUT_DIR/<name>.npy` arrays.
With `--without-tensorflow`, TensorFlow cannot be imported (as if it were
not installed) and only the keras-hub model is run.

Nothing is imported before the import checks, so they see exactly what
`import keras_refinenet` imports.
"""

import contextlib
import importlib.abc
import json
import os
import sys
import time
import traceback

BLOCKED = "tensorflow"
# The frame of an `import` statement (not of a `find_spec` lookup).
IMPORT_FRAME = "_find_and_load_unlocked"
LEARNING_RATE = 1e-3
# Two steps per epoch on the two training images.
BATCH_SIZE = 1


class _ImportWitness(importlib.abc.MetaPathFinder):
    """Records which file first imports `name` (or refuses the import).

    Lookups that do not import (`importlib.util.find_spec("tensorflow")`,
    as `torch._dynamo` does) are not counted.
    """

    def __init__(self, name, block=False):
        self.name = name
        self.block = block
        self.importer = None

    def find_spec(self, fullname, path, target=None):
        frames = traceback.extract_stack()[:-1]
        # frames[-1] is importlib's `_find_spec`; its caller tells an
        # import from a lookup.
        importing = len(frames) > 1 and frames[-2].name == IMPORT_FRAME
        if fullname != self.name or not importing:
            return None
        if self.importer is None:
            outside = [
                frame.filename
                for frame in frames
                if "importlib" not in frame.filename
                and not frame.filename.startswith("<")
                and frame.filename != __file__
            ]
            self.importer = outside[-1] if outside else None
        if self.block:
            raise ModuleNotFoundError(f"No module named {fullname!r}")
        return None


def _package_of(path):
    """`keras_hub`, `keras_cv`, `keras_refinenet`... of a source file."""
    if path is None:
        return None
    parts = path.replace(os.sep, "/").split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return parts[parts.index(marker) + 1]
    return "keras_refinenet" if "keras_refinenet" in parts else path


@contextlib.contextmanager
def _timed(results, phase):
    start = time.perf_counter()
    yield
    results.setdefault("seconds", {})[phase] = time.perf_counter() - start


def _tf_imported():
    return BLOCKED in sys.modules


def _error(function):
    try:
        function()
    except Exception as error:
        return {"type": type(error).__name__, "message": str(error)}
    return None


def import_checks(results):
    start = time.perf_counter()
    import keras_refinenet

    results["import_seconds"] = time.perf_counter() - start
    results["tf_after_import"] = _tf_imported()
    results["keras_after_import"] = "keras" in sys.modules
    keras_refinenet.layers.ResidualConvUnit  # noqa: B018
    import keras_refinenet.training.losses  # noqa: F401
    import keras_refinenet.training.metrics  # noqa: F401

    results["tf_after_layers_losses_metrics"] = _tf_imported()
    start = time.perf_counter()
    keras_refinenet.RefineNet  # noqa: B018
    results["model_import_seconds"] = time.perf_counter() - start
    results["tf_after_model_import"] = _tf_imported()


def eager_logits(model, images):
    """The logits of raw `images`, called eagerly (no compilation)."""
    import keras

    outputs = model(model.preprocessor(images), training=False)
    return keras.ops.convert_to_numpy(outputs)


def model_checks(presets_dir, out_dir, results, names):
    import keras
    import numpy as np

    import keras_refinenet

    images = np.load(os.path.join(presets_dir, "images.npy"))
    for name in names:
        with _timed(results, f"model_{name}"):
            model = keras_refinenet.RefineNet.from_preset(
                os.path.join(presets_dir, name)
            )
            logits = eager_logits(model, images)
        np.save(os.path.join(out_dir, f"logits_{name}.npy"), logits)
    results["models"] = list(names)
    results["backend"] = keras.config.backend()


def training_checks(presets_dir, out_dir, results):
    import keras
    import numpy as np

    import keras_refinenet
    from keras_refinenet.backend_support import BackendNotSupportedError
    from keras_refinenet.training import losses, metrics

    arrays = np.load(os.path.join(presets_dir, "training.npz"))
    images, labels = arrays["images"], arrays["labels"]
    logits, loss_labels = arrays["logits"], arrays["loss_labels"]

    # Losses and metrics on fixed logits.
    loss_values = {}
    for spec in ("ce", "ohem", "focal", "dice", "lovasz", "ce+0.5*dice"):
        loss = losses.get_loss(spec, **_loss_options(spec))
        loss_values[spec] = float(loss(loss_labels, logits))
    results["losses"] = loss_values
    mean_iou = metrics.MeanIoU(num_classes=logits.shape[-1])
    accuracy = metrics.PixelAccuracy()
    for metric in (mean_iou, accuracy):
        metric.update_state(loss_labels, logits)
    results["eager_mean_iou"] = float(mean_iou.result())
    results["eager_confusion"] = mean_iou.confusion_matrix().tolist()
    results["eager_pixel_accuracy"] = float(accuracy.result())
    if keras.config.backend() == "tensorflow":
        # fit, saving and exports on TensorFlow: tests/models, tests/export.
        return

    # fit, evaluate (compiled metrics, jit on JAX), save and load.
    model = keras_refinenet.RefineNet.from_preset(
        os.path.join(presets_dir, "keras_cv")
    )
    model.compile(optimizer_name="adamw", learning_rate=LEARNING_RATE)
    with _timed(results, "fit_evaluate"):
        before = model.evaluate(
            images, labels, batch_size=BATCH_SIZE, verbose=0, return_dict=True
        )
        history = model.fit(
            images,
            labels,
            batch_size=BATCH_SIZE,
            epochs=1,
            verbose=0,
            shuffle=False,
        )
        after = model.evaluate(
            images, labels, batch_size=BATCH_SIZE, verbose=0, return_dict=True
        )
        results["evaluate_before"] = before
        results["evaluate_after"] = after
        results["fit_loss"] = history.history["loss"]
        trained_logits = eager_logits(model, images)
    np.save(os.path.join(out_dir, "trained_logits.npy"), trained_logits)
    keras_path = os.path.join(out_dir, "model.keras")
    model.save(keras_path)
    reloaded = keras.saving.load_model(keras_path)
    np.save(
        os.path.join(out_dir, "reloaded_logits.npy"),
        eager_logits(reloaded, images),
    )
    preset_path = os.path.join(out_dir, "preset")
    model.save_to_preset(preset_path)
    from_preset = keras_refinenet.RefineNet.from_preset(preset_path)
    np.save(
        os.path.join(out_dir, "preset_logits.npy"),
        eager_logits(from_preset, images),
    )

    # predict_segmentation, plain and with tiles and flips.
    raw = images[0].astype("uint8")
    np.save(
        os.path.join(out_dir, "class_ids.npy"),
        model.predict_segmentation(raw),
    )

    # TensorFlow-only features.
    from keras_refinenet.data.cityscapes import load_cityscapes
    from keras_refinenet.export import export_model
    from keras_refinenet.export.saved_model import export_saved_model
    from keras_refinenet.training.distribute import get_strategy

    tf_only = {
        "saved_model": lambda: export_saved_model(
            model, os.path.join(out_dir, "serving")
        ),
        "onnx": lambda: export_model(
            model, os.path.join(out_dir, "onnx"), format="onnx"
        ),
        "mirrored_strategy": lambda: get_strategy("mirrored"),
        "tfds_cityscapes": lambda: load_cityscapes(
            "val", download_and_prepare=False
        ),
    }
    results["tf_only_errors"] = {}
    for feature, function in tf_only.items():
        error = _error(function)
        results["tf_only_errors"][feature] = error
        if error is not None:
            assert error["type"] == BackendNotSupportedError.__name__, error


def _loss_options(spec):
    # OHEM keeps at least `min_kept` pixels; the default is for full images.
    return {"ohem_min_kept": 16} if spec == "ohem" else {}


def without_tensorflow_checks(presets_dir, out_dir, results):
    """The keras-hub model on a machine without TensorFlow."""
    import keras
    import numpy as np

    import keras_refinenet

    arrays = np.load(os.path.join(presets_dir, "training.npz"))
    images, labels = arrays["images"], arrays["labels"]
    model = keras_refinenet.RefineNet.from_preset(
        os.path.join(presets_dir, "keras_hub")
    )
    model.compile(optimizer_name="adamw", learning_rate=LEARNING_RATE)
    history = model.fit(
        images, labels, batch_size=BATCH_SIZE, epochs=1, verbose=0
    )
    results["fit_loss"] = history.history["loss"]
    results["class_ids_shape"] = list(
        model.predict_segmentation(images[0].astype("uint8")).shape
    )
    results["backend"] = keras.config.backend()


def main(argv):
    presets_dir, out_dir = argv[:2]
    without_tensorflow = "--without-tensorflow" in argv
    witness = _ImportWitness(BLOCKED, block=without_tensorflow)
    sys.meta_path.insert(0, witness)
    results = {}
    try:
        import_checks(results)
        if without_tensorflow:
            without_tensorflow_checks(presets_dir, out_dir, results)
        else:
            model_checks(presets_dir, out_dir, results, argv[2].split(","))
            training_checks(presets_dir, out_dir, results)
    except Exception:
        results["failure"] = traceback.format_exc()
    results["tf_importer"] = _package_of(witness.importer)
    results["tf_imported"] = _tf_imported()
    with open(os.path.join(out_dir, "results.json"), "w") as file:
        json.dump(results, file, indent=1, default=float)


if __name__ == "__main__":
    main(sys.argv[1:])
