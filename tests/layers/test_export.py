"""The layers survive SavedModel export and `fit` with unknown image sizes."""

import keras
import numpy as np
import tensorflow as tf

from keras_refinenet.layers import RefineNetBlock, ResizeLike


def _fusion_model():
    images = keras.Input((None, None, 3))
    fine = keras.layers.Conv2D(4, 3, padding="same")(images)
    coarse = keras.layers.Conv2D(6, 3, strides=2, padding="same")(fine)
    x = RefineNetBlock(filters=4, adaptive_units=[1, 0], output_units=1)(
        [fine, coarse]
    )
    x = keras.layers.Conv2D(2, 1)(x)
    small = keras.layers.AveragePooling2D(2, padding="same")(x)
    out = ResizeLike()([small, images])
    return keras.Model(images, out)


def test_saved_model_export_with_unknown_size(tmp_path, rng):
    model = _fusion_model()
    path = str(tmp_path / "exported")
    model.export(path, format="tf_saved_model", verbose=False)
    restored = tf.saved_model.load(path)
    for height, width in [(17, 23), (32, 9)]:
        x = rng.normal(size=(2, height, width, 3)).astype("float32")
        got = restored.serve(tf.constant(x)).numpy()
        np.testing.assert_allclose(got, model(x), rtol=1e-5, atol=1e-5)
        assert got.shape == (2, height, width, 2)


def test_fit_on_unknown_spatial_sizes(rng):
    model = _fusion_model()
    model.compile(optimizer=keras.optimizers.SGD(1e-9), loss="mse")

    def batches():
        for height, width in [(16, 16), (13, 21), (30, 11)] * 2:
            x = rng.normal(size=(2, height, width, 3)).astype("float32")
            yield x, np.zeros((2, height, width, 2), "float32")

    signature = (
        tf.TensorSpec((None, None, None, 3)),
        tf.TensorSpec((None, None, None, 2)),
    )
    dataset = tf.data.Dataset.from_generator(
        batches, output_signature=signature
    )
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
