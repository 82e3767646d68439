import numpy as np
import pytest

from keras_refinenet.inference import predict
from keras_refinenet.inference.predict import predict_segmentation


def softmax(logits):
    exponentials = np.exp(logits - logits.max(-1, keepdims=True))
    return exponentials / exponentials.sum(-1, keepdims=True)


def bilinear_half_pixel(image, out_height, out_width):
    """Reference resize: half-pixel centres, edge clamping (numpy loops)."""
    in_height, in_width = image.shape[:2]
    result = np.zeros((out_height, out_width, image.shape[2]), np.float64)
    for i in range(out_height):
        y = min(max((i + 0.5) * in_height / out_height - 0.5, 0), in_height - 1)
        y0 = int(np.floor(y))
        y1 = min(y0 + 1, in_height - 1)
        for j in range(out_width):
            x = (j + 0.5) * in_width / out_width - 0.5
            x = min(max(x, 0), in_width - 1)
            x0 = int(np.floor(x))
            x1 = min(x0 + 1, in_width - 1)
            top = image[y0, x0] + (image[y0, x1] - image[y0, x0]) * (x - x0)
            bottom = image[y1, x0] + (image[y1, x1] - image[y1, x0]) * (x - x0)
            result[i, j] = top + (bottom - top) * (y - y0)
    return result.astype(np.float32)


def model_probabilities(model, image):
    images = image[np.newaxis].astype(np.float32)
    # A RefineNet normalizes raw pixels with its preprocessor, by hand here.
    converter = getattr(model, "image_converter", None)
    if converter is not None:
        mean, std = np.array(converter.mean), np.array(converter.std)
        images = ((images * converter.image_scale - mean) / std).astype(
            np.float32
        )
    logits = np.asarray(model(images, training=False))[0]
    return softmax(logits.astype(np.float64))


@pytest.fixture
def image():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(64, 96, 3), dtype=np.uint8)


def test_tile_starts_and_window_by_hand():
    assert predict.tile_starts(96, 64, 0.5) == [0, 32]
    assert predict.tile_starts(100, 40, 0.25) == [0, 30, 60]
    assert predict.tile_starts(50, 64, 0.5) == [0]
    assert predict.tile_starts(130, 64, 0.0) == [0, 33, 66]
    np.testing.assert_allclose(
        predict.tile_window(3, 5),
        np.outer([0.5, 1, 0.5], [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3]),
        rtol=1e-6,
    )


def test_tiling_of_context_free_model_equals_untiled(pointwise_model):
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, size=(150, 171, 3)).astype(np.float32)
    expected = softmax(pointwise_model.logits(image).astype(np.float64))
    ids, probabilities = predict_segmentation(
        pointwise_model,
        image,
        tile_size=(64, 48),
        tile_overlap=0.3,
        flip=True,
        return_probabilities=True,
        batch_size=5,
    )
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_array_equal(ids, expected.argmax(-1))
    assert all(shape[0] <= 5 for shape in pointwise_model.calls)
    assert all(shape[1:3] == (64, 48) for shape in pointwise_model.calls)


def test_tile_as_large_as_image_equals_plain_prediction(tiny_model, image):
    expected = model_probabilities(tiny_model, image.astype(np.float32))
    ids, probabilities = predict_segmentation(
        tiny_model, image, tile_size=(64, 96), return_probabilities=True
    )
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_array_equal(ids, expected.argmax(-1))


def test_overlapping_tiles_blend_with_tent_weights(tiny_model, image):
    image = image.astype(np.float32)
    left = model_probabilities(tiny_model, image[:, :64])
    right = model_probabilities(tiny_model, image[:, 32:])
    tent = np.minimum(np.arange(1, 65), np.arange(64, 0, -1)) / 32.0
    weight = np.zeros(96)
    total = np.zeros((64, 96, 3))
    weight[:64] += tent
    weight[32:] += tent
    total[:, :64] += left * tent[:, None]
    total[:, 32:] += right * tent[:, None]
    expected = total / weight[:, None]
    _, probabilities = predict_segmentation(
        tiny_model,
        image,
        tile_size=64,
        tile_overlap=0.5,
        return_probabilities=True,
    )
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_flip_averages_manual_flips(tiny_model, image):
    image = image.astype(np.float32)
    plain = model_probabilities(tiny_model, image)
    mirrored = model_probabilities(tiny_model, image[:, ::-1].copy())[:, ::-1]
    expected = (plain + mirrored) / 2
    _, probabilities = predict_segmentation(
        tiny_model, image, flip=True, return_probabilities=True
    )
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_multi_scale_matches_numpy_resizing(tiny_model, image):
    image = image.astype(np.float32)
    small = bilinear_half_pixel(image, 32, 48)
    small_probs = model_probabilities(tiny_model, small)
    expected = (
        bilinear_half_pixel(small_probs, 64, 96)
        + model_probabilities(tiny_model, image)
    ) / 2
    _, probabilities = predict_segmentation(
        tiny_model, image, scales=(0.5, 1.0), return_probabilities=True
    )
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)


def test_stride4_model_output_is_resized_to_the_image(image):
    from keras_refinenet import tiny_refinenet

    model = tiny_refinenet(num_classes=2, upsample_output=False)
    ids, probabilities = predict_segmentation(
        model, image, return_probabilities=True
    )
    assert ids.shape == (64, 96) and probabilities.shape == (64, 96, 2)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)


def test_batches_lists_and_structure(pointwise_model):
    rng = np.random.default_rng(3)
    batch = rng.integers(0, 256, size=(3, 40, 50, 3), dtype=np.uint8)
    ids = predict_segmentation(pointwise_model, batch, batch_size=2)
    expected = pointwise_model.logits(batch).argmax(-1)
    assert ids.dtype == np.int32 and ids.shape == (3, 40, 50)
    np.testing.assert_array_equal(ids, expected)
    images = [batch[0], rng.integers(0, 256, (33, 70, 3), dtype=np.uint8)]
    ids, probabilities = predict_segmentation(
        pointwise_model, images, return_probabilities=True
    )
    assert [i.shape for i in ids] == [(40, 50), (33, 70)]
    assert [p.shape for p in probabilities] == [(40, 50, 4), (33, 70, 4)]
    np.testing.assert_array_equal(
        ids[1], pointwise_model.logits(images[1]).argmax(-1)
    )


def test_grayscale_and_opaque_rgba_are_converted(pointwise_model):
    rng = np.random.default_rng(4)
    gray = rng.integers(0, 256, size=(40, 40), dtype=np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    expected = predict_segmentation(pointwise_model, rgb)
    for variant in (gray, gray[..., None]):
        np.testing.assert_array_equal(
            predict_segmentation(pointwise_model, variant), expected
        )
    opaque = np.concatenate([rgb, np.full((40, 40, 1), 255, np.uint8)], -1)
    np.testing.assert_array_equal(
        predict_segmentation(pointwise_model, opaque), expected
    )
    transparent = opaque.copy()
    transparent[0, 0, 3] = 10
    with pytest.raises(ValueError, match="transparency"):
        predict_segmentation(pointwise_model, transparent)


@pytest.mark.parametrize(
    "bad_images, message",
    [
        (np.zeros((40, 40, 2)), "1 \\(grayscale\\), 3 \\(RGB\\) or 4"),
        (np.zeros((0, 40, 40, 3)), "empty batch"),
        ([], "must not be empty"),
        (np.full((40, 40, 3), np.nan), "non-finite"),
        (np.full((40, 40, 3), 300.0), "\\[0, 255\\]"),
        (np.zeros((31, 64, 3)), "at least 32x32"),
        (np.zeros((40, 40, 3), bool), "integer or float"),
        (np.zeros((2, 2, 40, 40, 3)), "Received: image.shape"),
    ],
)
def test_bad_inputs_raise_clear_errors(pointwise_model, bad_images, message):
    with pytest.raises(ValueError, match=message):
        predict_segmentation(pointwise_model, bad_images)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"scales": (0.5,)}, "At scale 0.5"),
        ({"scales": ()}, "scales"),
        ({"tile_size": 8}, "tile_size"),
        ({"tile_overlap": 1.0}, "tile_overlap"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_options_raise(pointwise_model, options, message):
    with pytest.raises(ValueError, match=message):
        predict_segmentation(pointwise_model, np.zeros((40, 40, 3)), **options)


def test_model_method_delegates(tiny_model, image):
    expected = predict_segmentation(tiny_model, image)
    np.testing.assert_array_equal(
        tiny_model.predict_segmentation(image), expected
    )
