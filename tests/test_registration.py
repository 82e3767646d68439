"""`keras.saving.load_model` finds our classes in a fresh process."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_refinenet.models import tiny_refinenet

LOAD_AND_PREDICT = """
import sys
import numpy as np
{imports}
model = keras.saving.load_model(sys.argv[1])
np.save(sys.argv[2], model.predict(np.load(sys.argv[3]), verbose=0))
"""
IMPORT_ORDERS = {
    # Keras first (the sorted order): the package registers on import.
    "keras_first": "import keras\nimport keras_refinenet",
    # Package first: the lazy import leaves registration to this call.
    "package_first": "import keras_refinenet\nimport keras\n"
    "keras_refinenet.register_keras_objects()",
}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved")
    model = tiny_refinenet(num_classes=3)
    images = np.random.default_rng(1).uniform(0, 255, (1, 37, 45, 3))
    np.save(folder / "images.npy", images.astype("float32"))
    model.save(folder / "model.keras")
    return folder, model.predict(images, verbose=0)


@pytest.mark.parametrize("order", sorted(IMPORT_ORDERS))
def test_load_model_in_a_fresh_process(saved_model, order):
    folder, expected = saved_model
    script = LOAD_AND_PREDICT.format(imports=IMPORT_ORDERS[order])
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(script),
            str(folder / "model.keras"),
            str(folder / f"logits_{order}.npy"),
            str(folder / "images.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    logits = np.load(folder / f"logits_{order}.npy")
    np.testing.assert_allclose(logits, expected, atol=1e-5)
