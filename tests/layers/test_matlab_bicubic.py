"""MATLAB `imresize` bicubic: the numpy reference by hand, the op against it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_refinenet.layers import (
    MultiResolutionFusion,
    RefineNetBlock,
    ResizeLike,
    ScaleImages,
    resize_images,
)
from tests.layers import matlab_imresize_reference as ref
from tests.numpy_reference import conv2d_same

ATOL = 1e-4
BICUBIC = "matlab_bicubic"

# Keys' kernel (a = -0.5) at the offsets a factor-2 resize uses, by hand:
# 1.5 t^3 - 2.5 t^2 + 1 for t <= 1, -0.5 t^3 + 2.5 t^2 - 4 t + 2 for t <= 2.
K025 = 0.8671875  # 0.0234375 - 0.15625 + 1
K075 = 0.2265625  # 0.6328125 - 1.40625 + 1
K125 = -0.0703125  # -0.9765625 + 3.90625 - 5 + 2
K175 = -0.0234375  # -2.6796875 + 7.65625 - 7 + 2
K050 = 0.5625  # 0.1875 - 0.625 + 1
K150 = -0.0625  # -1.6875 + 5.625 - 6 + 2

# 4 pixels -> 8 (scale 2): output x sits at u = x / 2 + 0.25; e.g. x = 1,
# u = 0.75, taps 0 and -1 mirror onto pixels 1 and 2.
UPSAMPLE_4_TO_8 = np.array(
    [
        [K075 + K025, K125 + K175, 0, 0],
        [K125 + K025, K075, K175, 0],
        [K175 + K075, K025, K125, 0],
        [K125, K025, K075, K175],
        [K175, K075, K025, K125],
        [0, K125, K025, K175 + K075],
        [0, K175, K075, K125 + K025],
        [0, 0, K125 + K175, K075 + K025],
    ]
)
# 4 pixels -> 2 (scale 0.5) with antialiasing: kernel 0.5 * k(t / 2) over
# width 8; output 1 sits at u = 1.5, taps -2..5, mirrored 3 2 1 | 1 2 3 4 | 4.
DOWNSAMPLE_4_TO_2 = (
    np.array(
        [
            [K075 + K025, K125 + K025, K175 + K075, K125 + K175],
            [K125 + K175, K175 + K075, K125 + K025, K075 + K025],
        ]
    )
    / 2
)
# The same without antialiasing: plain kernel, taps at distance 0.5, 1.5.
DOWNSAMPLE_4_TO_2_ALIASED = np.array(
    [[K050 + K150, K050, K150, 0], [0, K150, K050, K050 + K150]]
)


def _bicubic(x, size=None, **kwargs):
    return np.asarray(resize_images(x, size, interpolation=BICUBIC, **kwargs))


def _assert_uint8_equal(got, images, **kwargs):
    """Equal to MATLAB's uint8 result except where an exact .5 tie decides.

    Ties (see `matlab_imresize_reference.TIE_TOLERANCE`) round either way in
    float code, MATLAB's included; the pixels depending on one may differ.
    """
    want, ties = ref.imresize_batch(
        images, uint8=True, return_ties=True, **kwargs
    )
    assert got.shape == want.shape
    np.testing.assert_array_equal(got[~ties], want[~ties])
    assert np.abs(got[ties].astype(float) - want[ties]).max(initial=0) <= 2
    assert ties.mean() < 0.05
    return ties


# --- the reference, by hand -------------------------------------------------


def test_reference_kernel_hand_values():
    for offset, value in [
        (0.0, 1.0),
        (0.25, K025),
        (0.5, K050),
        (0.75, K075),
        (1.0, 0.0),
        (1.25, K125),
        (1.5, K150),
        (1.75, K175),
        (2.0, 0.0),
        (2.5, 0.0),
        (-0.75, K075),
    ]:
        assert ref.keys_cubic(offset) == pytest.approx(value, abs=1e-12)


def test_reference_mirror_repeats_the_edge():
    # 1-based taps -2..7 of a 3-pixel axis: 1 2 3 3 2 1 1 2 3 3 ...
    got = [ref.mirror_index(tap, 3) for tap in range(-2, 8)]
    assert got == [2, 1, 0, 0, 1, 2, 2, 1, 0, 0]


def test_reference_weights_by_hand():
    np.testing.assert_allclose(
        ref.axis_weights(4, 8, 2.0), UPSAMPLE_4_TO_8, atol=1e-12
    )
    np.testing.assert_allclose(
        ref.axis_weights(4, 2, 0.5), DOWNSAMPLE_4_TO_2, atol=1e-12
    )
    np.testing.assert_allclose(
        ref.axis_weights(4, 2, 0.5, antialias=False),
        DOWNSAMPLE_4_TO_2_ALIASED,
        atol=1e-12,
    )
    for matrix in (UPSAMPLE_4_TO_8, DOWNSAMPLE_4_TO_2):
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0)


def test_reference_signal_by_hand():
    signal = np.array([[1.0, 2.0, 3.0, 4.0]])
    # Interior outputs of a linear ramp stay on the ramp; the ends bend
    # because the mirror repeats the edge pixel.
    np.testing.assert_allclose(
        ref.imresize(signal, (1, 8))[0],
        [0.90625, 1.1796875, 1.7265625, 2.25, 2.75, 3.2734375, 3.8203125]
        + [4.09375],
    )
    np.testing.assert_allclose(
        ref.imresize(signal, (1, 2))[0], [1.4609375, 3.5390625]
    )


def test_reference_rounds_after_each_pass_in_scale_order(rng):
    image = rng.integers(0, 256, size=(6, 5)).astype("float64")
    # Rows 6 -> 9 (scale 1.5) and columns 5 -> 3 (scale 0.6): columns first.
    once = np.clip(np.floor(ref.imresize(image, (9, 3)) + 0.5), 0, 255)
    per_pass = ref.imresize(image, (9, 3), uint8=True)
    columns_first = ref.imresize(image, (9, 3), uint8=True, order=(1, 0))
    rows_first = ref.imresize(image, (9, 3), uint8=True, order=(0, 1))
    assert per_pass.min() >= 0 and per_pass.max() <= 255
    np.testing.assert_array_equal(per_pass, np.round(per_pass))
    np.testing.assert_array_equal(per_pass, columns_first)
    assert not np.array_equal(per_pass, once)
    assert not np.array_equal(per_pass, rows_first)
    # Without rounding the order does not matter.
    np.testing.assert_allclose(
        ref.imresize(image, (9, 3), order=(0, 1)),
        ref.imresize(image, (9, 3), order=(1, 0)),
        atol=1e-9,
    )


# --- the op against the reference -------------------------------------------


def test_op_hand_values():
    x = np.array([1, 2, 3, 4], "float32").reshape(1, 1, 4, 1)
    np.testing.assert_allclose(
        _bicubic(x, (1, 8)).ravel(), UPSAMPLE_4_TO_8 @ [1, 2, 3, 4], atol=1e-6
    )
    np.testing.assert_allclose(
        _bicubic(x, (1, 2)).ravel(), DOWNSAMPLE_4_TO_2 @ [1, 2, 3, 4], atol=1e-6
    )
    np.testing.assert_allclose(
        _bicubic(x, (1, 2), antialias=False).ravel(),
        DOWNSAMPLE_4_TO_2_ALIASED @ [1, 2, 3, 4],
        atol=1e-6,
    )


RESIZES = [
    ((7, 5), (13, 11)),  # odd upsampling
    ((13, 11), (6, 5)),  # odd downsampling, antialiased
    ((37, 45), (44, 54)),  # round(size * 1.2)
    ((8, 8), (16, 16)),
    ((16, 18), (5, 4)),  # strong shrink: wide kernel, many mirrored taps
    ((9, 6), (9, 14)),  # one axis unchanged
    ((10, 12), (4, 30)),  # shrink one axis, grow the other
    ((1, 1), (3, 4)),
    ((5, 7), (1, 1)),
    ((2, 3), (7, 2)),
]


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("in_size, out_size", RESIZES)
def test_op_matches_reference(rng, in_size, out_size, antialias):
    x = rng.normal(size=(2, *in_size, 3)).astype("float32")
    got = _bicubic(x, out_size, antialias=antialias)
    want = ref.imresize_batch(x, output_size=out_size, antialias=antialias)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=ATOL)


@pytest.mark.parametrize(
    "in_size, scale", [((37, 45), 1.2), ((13, 11), 0.6), ((7, 5), 2.0)]
)
def test_scale_factor_form_matches_reference(rng, in_size, scale):
    x = rng.normal(size=(1, *in_size, 2)).astype("float32")
    got = _bicubic(x, scale=scale)
    want = ref.imresize_batch(x, scale=scale)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=ATOL)


def test_scale_factor_form_differs_from_the_size_form(rng):
    # x1.2 of 37x45: ceil gives 45x54 with scale 1.2 on both axes; the size
    # form round(size * 1.2) = 44x54 maps rows by 44 / 37.
    x = rng.uniform(0, 255, size=(1, 37, 45, 1)).astype("float32")
    factor = _bicubic(x, scale=1.2)
    sized = _bicubic(x, (44, 54))
    assert factor.shape == (1, 45, 54, 1)
    assert np.abs(factor[:, :44] - sized).max() > 1.0
    np.testing.assert_allclose(
        sized, ref.imresize_batch(x, output_size=(44, 54)), atol=1e-3
    )


@pytest.mark.parametrize(
    "in_size, out_size",
    [((7, 5), (13, 11)), ((6, 9), (11, 17)), ((4, 4), (9, 8))],
)
def test_uniform_crop_matches_the_authors_gpu_resize(rng, in_size, out_size):
    x = rng.normal(size=(2, *in_size, 3)).astype("float32")
    got = _bicubic(x, out_size, scale_mode="uniform_crop")
    want = np.stack([ref.imresize_uniform_crop(i, out_size) for i in x])
    np.testing.assert_allclose(got, want, atol=ATOL)
    per_axis = ref.imresize_batch(x, output_size=out_size)
    assert np.abs(got - per_axis).max() > 1e-2


@pytest.mark.parametrize(
    "in_size, out_size",
    [((9, 13), (20, 7)), ((9, 13), (5, 30)), ((37, 45), (44, 54))],
)
def test_uint8_rounding_after_each_pass(rng, in_size, out_size):
    image = rng.integers(0, 256, size=(1, *in_size, 3)).astype("uint8")
    got = _bicubic(image, out_size)
    assert got.dtype == np.uint8
    _assert_uint8_equal(got, image, output_size=out_size)
    floats = _bicubic(image.astype("float32"), out_size, round_to_uint8=True)
    np.testing.assert_array_equal(floats, got)
    by_order = [
        ref.imresize_batch(image, output_size=out_size, uint8=True, order=order)
        for order in ((0, 1), (1, 0))
    ]
    assert not np.array_equal(*by_order)
    once = np.clip(
        np.floor(ref.imresize_batch(image, output_size=out_size) + 0.5), 0, 255
    )
    assert not np.array_equal(got, once)


def _graph_resize(size_mode, round_to_uint8):
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, 2]),
            tf.TensorSpec([None, None, None, 1]),
        ]
    )
    def resize(source, reference):
        shape = tf.shape(reference)
        return resize_images(
            source,
            (shape[1], shape[2]),
            interpolation=BICUBIC,
            scale_mode=size_mode,
            round_to_uint8=round_to_uint8,
        )

    return resize


@pytest.mark.parametrize(
    "scale_mode, round_to_uint8",
    [("per_axis", False), ("uniform_crop", False), ("per_axis", True)],
)
def test_unknown_sizes_in_a_graph(rng, scale_mode, round_to_uint8):
    resize = _graph_resize(scale_mode, round_to_uint8)
    for in_size, out_size in [((7, 5), (13, 11)), ((9, 13), (20, 7))]:
        x = rng.uniform(0, 255, size=(1, *in_size, 2)).astype("float32")
        if round_to_uint8:
            x = np.round(x)
        got = resize(x, np.zeros((1, *out_size, 1), "float32")).numpy()
        if round_to_uint8:
            _assert_uint8_equal(got, x, output_size=out_size)
            continue
        if scale_mode == "uniform_crop":
            want = np.stack([ref.imresize_uniform_crop(i, out_size) for i in x])
        else:
            want = ref.imresize_batch(x, output_size=out_size)
        np.testing.assert_allclose(got, want, atol=1e-3)


def test_scale_tensor_in_a_graph(rng):
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, None, 1]),
            tf.TensorSpec([], tf.float64),
        ]
    )
    def resize(images, factor):
        return resize_images(images, interpolation=BICUBIC, scale=factor)

    x = rng.normal(size=(1, 13, 11, 1)).astype("float32")
    for factor in (0.6, 1.7):
        got = resize(x, factor).numpy()
        np.testing.assert_allclose(
            got, ref.imresize_batch(x, scale=factor), atol=ATOL
        )


def _avg_pool_2x2(x):
    height, width = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
    x = x[:, :height, :width]
    return x.reshape(
        x.shape[0], height // 2, 2, width // 2, 2, x.shape[3]
    ).mean(axis=(2, 4))


def test_saved_model_round_trip_with_unknown_size(tmp_path, rng):
    images = keras.Input((None, None, 3))
    scaled = ScaleImages(1.2, interpolation=BICUBIC, round_to_uint8=True)(
        images
    )
    small = keras.layers.AveragePooling2D(2)(scaled)
    out = ResizeLike(BICUBIC, scale_mode="uniform_crop")([small, images])
    model = keras.Model(images, [scaled, out])
    path = str(tmp_path / "exported")
    model.export(path, format="tf_saved_model", verbose=False)
    restored = tf.saved_model.load(path)
    for height, width in [(17, 23), (32, 9)]:
        x = np.round(rng.uniform(0, 255, size=(2, height, width, 3)))
        x = x.astype("float32")
        got_scaled, got = (
            np.asarray(y) for y in restored.serve(tf.constant(x))
        )
        size = (round(height * 1.2), round(width * 1.2))
        _assert_uint8_equal(got_scaled, x, output_size=size)
        # The second stage from the first stage's output, so that a .5 tie
        # of the rounding does not spread through the comparison.
        want = np.stack(
            [
                ref.imresize_uniform_crop(i, (height, width))
                for i in _avg_pool_2x2(got_scaled)
            ]
        )
        assert got.shape == (2, height, width, 3)
        np.testing.assert_allclose(got, want, atol=1e-3)
        for eager, exported in zip(model(x), (got_scaled, got)):
            np.testing.assert_allclose(eager, exported, atol=1e-3)


def test_fit_through_bicubic_fusion_on_unknown_sizes(rng):
    images = keras.Input((None, None, 3))
    fine = keras.layers.Conv2D(4, 3, padding="same")(images)
    coarse = keras.layers.Conv2D(6, 3, strides=2, padding="same")(fine)
    x = RefineNetBlock(
        4,
        adaptive_units=[1, 0],
        output_units=1,
        interpolation=BICUBIC,
        scale_mode="uniform_crop",
    )([fine, coarse])
    small = keras.layers.AveragePooling2D(2, padding="same")(x)
    out = ResizeLike(BICUBIC, scale_mode="uniform_crop")([small, images])
    model = keras.Model(images, out)
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")

    def batches():
        for height, width in [(16, 16), (13, 21), (30, 11)] * 2:
            x = rng.normal(size=(2, height, width, 3)).astype("float32")
            yield x, np.zeros((2, height, width, 4), "float32")

    dataset = tf.data.Dataset.from_generator(
        batches,
        output_signature=(
            tf.TensorSpec((None, None, None, 3)),
            tf.TensorSpec((None, None, None, 4)),
        ),
    )
    before = [np.array(w) for w in model.get_weights()]
    history = model.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [
        not np.allclose(old, new)
        for old, new in zip(before, model.get_weights())
    ]
    assert all(changed)


def test_float16_policy(rng):
    keras.config.set_dtype_policy("mixed_float16")
    x = rng.normal(size=(1, 7, 5, 4)).astype("float32")
    layer = ResizeLike(BICUBIC, scale_mode="uniform_crop")
    got = layer([x, np.zeros((1, 13, 11, 1), "float32")])
    assert keras.backend.standardize_dtype(got.dtype) == "float16"
    want = np.stack([ref.imresize_uniform_crop(i, (13, 11)) for i in x])
    np.testing.assert_allclose(np.asarray(got, "float32"), want, atol=2e-2)

    pixels = np.round(rng.uniform(0, 255, size=(1, 37, 45, 3)))
    scale = ScaleImages(1.2, interpolation=BICUBIC, round_to_uint8=True)
    got = scale(pixels.astype("float32"))
    assert keras.backend.standardize_dtype(got.dtype) == "float16"
    got = np.asarray(got, "float32")
    _assert_uint8_equal(got, pixels, output_size=(44, 54))


def test_errors_name_the_argument():
    x = np.zeros((1, 4, 4, 1), "float32")
    with pytest.raises(ValueError, match="Received: scale=2"):
        resize_images(x, scale=2)
    with pytest.raises(ValueError, match="Received: round_to_uint8=True"):
        resize_images(x, (3, 3), round_to_uint8=True)
    with pytest.raises(ValueError, match="Received: scale_mode='crop'"):
        resize_images(x, (3, 3), interpolation=BICUBIC, scale_mode="crop")
    with pytest.raises(ValueError, match="Received: size=None, scale=None"):
        resize_images(x, interpolation=BICUBIC)
    with pytest.raises(ValueError, match="scale_mode='uniform_crop'"):
        resize_images(
            x, (3, 3), interpolation=BICUBIC, scale=2, scale_mode="uniform_crop"
        )
    with pytest.raises(ValueError, match="Received: scale=-1"):
        resize_images(x, interpolation=BICUBIC, scale=-1)
    with pytest.raises(ValueError, match="Received: interpolation='bilinear'"):
        ResizeLike(scale_mode="uniform_crop")
    with pytest.raises(ValueError, match="Received: interpolation='bilinear'"):
        ScaleImages(1.2, round_to_uint8=True)
    with pytest.raises(ValueError, match="Received: size_rounding='floor'"):
        ScaleImages(1.2, size_rounding="floor")


# --- layers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [
        ResizeLike(BICUBIC, scale_mode="uniform_crop"),
        ScaleImages(
            1.2,
            interpolation=BICUBIC,
            round_to_uint8=True,
            size_rounding="ceil",
        ),
        MultiResolutionFusion(
            4, interpolation=BICUBIC, scale_mode="uniform_crop"
        ),
        RefineNetBlock(4, interpolation=BICUBIC, scale_mode="uniform_crop"),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_config_round_trip(layer):
    config = layer.get_config()
    assert config["interpolation"] == BICUBIC
    restored = type(layer).from_config(config)
    assert restored.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    again = keras.saving.deserialize_keras_object(serialized)
    assert again.get_config() == config


def test_defaults_stay_bilinear():
    for layer in (
        ResizeLike(),
        ScaleImages(0.5),
        MultiResolutionFusion(4),
        RefineNetBlock(4),
    ):
        assert layer.interpolation == "bilinear"
    assert ResizeLike().scale_mode == "per_axis"
    assert ScaleImages(0.5).size_rounding == "round"
    assert not ScaleImages(0.5).round_to_uint8
    block = RefineNetBlock(4, interpolation=BICUBIC, scale_mode="uniform_crop")
    assert block.fusion.interpolation == BICUBIC
    assert block.fusion.scale_mode == "uniform_crop"


@pytest.mark.parametrize("scale_mode", ["per_axis", "uniform_crop"])
def test_fusion_matches_numpy_composition(rng, scale_mode):
    fine = rng.normal(size=(1, 13, 11, 3)).astype("float32")
    coarse = rng.normal(size=(1, 7, 5, 5)).astype("float32")
    coarser = rng.normal(size=(1, 4, 3, 2)).astype("float32")
    inputs = [fine, coarse, coarser]
    fusion = MultiResolutionFusion(
        4, interpolation=BICUBIC, scale_mode=scale_mode
    )
    got = np.asarray(fusion(inputs))
    want = 0.0
    for conv, x in zip(fusion.convs, inputs):
        y = conv2d_same(x, np.asarray(conv.kernel))[0]
        if y.shape[:2] != (13, 11):
            if scale_mode == "uniform_crop":
                y = ref.imresize_uniform_crop(y, (13, 11))
            else:
                y = ref.imresize(y, (13, 11))
        want = want + y
    np.testing.assert_allclose(got[0], want, atol=ATOL)


@pytest.mark.parametrize(
    "size_rounding, in_size, scale",
    [
        ("round", (37, 45), 1.2),
        ("ceil", (37, 45), 1.2),
        ("round", (21, 17), 0.6),
    ],
)
def test_scale_images_matches_matlab(rng, size_rounding, in_size, scale):
    pixels = np.round(rng.uniform(0, 255, size=(2, *in_size, 3)))
    pixels = pixels.astype("float32")
    layer = ScaleImages(
        scale,
        interpolation=BICUBIC,
        round_to_uint8=True,
        size_rounding=size_rounding,
    )
    got = np.asarray(layer(pixels))
    if size_rounding == "ceil":
        kwargs = {"scale": scale}
    else:
        # MATLAB: imresize(img, round(size * scale)) on a uint8 image.
        kwargs = {
            "output_size": tuple(
                int(np.floor(n * scale + 0.5)) for n in in_size
            )
        }
    _assert_uint8_equal(got, pixels, **kwargs)
    assert layer.compute_output_shape((2, *in_size, 3)) == got.shape


def test_scale_images_pixel_offset_rounds_the_pixels(rng):
    """Images normalized as `pixels - 128` round as the pixels would."""
    pixels = np.round(rng.uniform(0, 255, size=(1, 23, 31, 3)))
    layer = ScaleImages(
        1.2, interpolation=BICUBIC, round_to_uint8=True, pixel_offset=128
    )
    got = np.asarray(layer(pixels.astype("float32") - 128.0)) + 128.0
    _assert_uint8_equal(got, pixels, output_size=(28, 37))
    config = layer.get_config()
    assert config["pixel_offset"] == 128.0
    assert ScaleImages.from_config(config).pixel_offset == 128.0
