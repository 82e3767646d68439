import time

import numpy as np
import pytest

from keras_refinenet.inference.predict import predict_segmentation


class ShapeRecorder:
    """Wraps a model and records the input shape of every call."""

    def __init__(self, model):
        self.model = model
        self.preprocessor = model.preprocessor
        self.align_corners = model.align_corners
        self.shapes = []

    def __call__(self, images, training=False):
        self.shapes.append(tuple(images.shape))
        return self.model(images, training=training)


@pytest.mark.large
def test_cityscapes_frame_runs_in_bounded_tiles():
    from keras_refinenet import RefineNet

    model = RefineNet.from_preset("refinenet101_cityscapes", load_weights=False)
    recorder = ShapeRecorder(model)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(1024, 2048, 3), dtype=np.uint8)
    start = time.perf_counter()
    class_ids, probabilities = predict_segmentation(
        recorder,
        frame,
        tile_size=512,
        batch_size=2,
        return_probabilities=True,
    )
    elapsed = time.perf_counter() - start
    assert class_ids.shape == (1024, 2048)
    assert probabilities.shape == (1024, 2048, 19)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-4)
    assert max(shape[0] for shape in recorder.shapes) <= 2
    assert {shape[1:3] for shape in recorder.shapes} == {(512, 512)}
    tiles = sum(shape[0] for shape in recorder.shapes)
    print(f"{tiles} tiles of 512x512 in {elapsed:.1f} s")
