"""LiteRT (TFLite) export: float32, or full-integer int8 with calibration."""

import pathlib

import numpy as np

from keras_refinenet.export.formats import logits_function

# "A few hundred images" by default; tests pass fewer.
DEFAULT_CALIBRATION_IMAGES = 200
SYNTHETIC_CALIBRATION = "synthetic"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
CALIBRATION_SEED = 0


def _resized(image, input_size):
    from PIL import Image

    height, width = input_size
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(
        Image.fromarray(image).resize((width, height), Image.BILINEAR)
    )


def calibration_images(
    calibration_data, input_size, num_images=DEFAULT_CALIBRATION_IMAGES
):
    """The calibration set as uint8 `(n, height, width, 3)` raw pixels.

    Args:
        calibration_data: a folder of images (resized to `input_size`),
            `"synthetic"` (or `None`) for the package's synthetic shapes,
            or a uint8 array `(n, height, width, 3)`.
        input_size: `(height, width)` of the export.
        num_images: at most this many images.

    Returns:
        A uint8 numpy array.

    Example:

    >>> calibration_images("synthetic", (32, 40), num_images=3).shape
    (3, 32, 40, 3)
    """
    if calibration_data is None or (
        isinstance(calibration_data, str)
        and calibration_data == SYNTHETIC_CALIBRATION
    ):
        from keras_refinenet.data.synthetic import make_synthetic_arrays

        images, _ = make_synthetic_arrays(
            num_images, image_size=tuple(input_size), seed=CALIBRATION_SEED
        )
        return images
    if isinstance(calibration_data, np.ndarray):
        images = calibration_data[:num_images]
        if images.ndim != 4 or images.dtype != np.uint8 or not len(images):
            raise ValueError(
                "`calibration_data` arrays must be uint8 "
                "(n, height, width, 3). "
                f"Received: calibration_data.shape={calibration_data.shape}, "
                f"dtype={calibration_data.dtype}"
            )
        return np.stack([_resized(image, input_size) for image in images])
    folder = pathlib.Path(calibration_data)
    if not folder.is_dir():
        raise ValueError(
            "`calibration_data` must be a folder of images, "
            f"{SYNTHETIC_CALIBRATION!r} or a uint8 array. "
            f"Received: calibration_data={calibration_data!r}"
        )
    from keras_refinenet.data.folder import read_image

    files = sorted(
        path
        for path in folder.iterdir()
        if path.suffix.lower() in IMAGE_EXTENSIONS
    )[:num_images]
    if not files:
        raise ValueError(
            "`calibration_data` folder holds no images "
            f"({', '.join(IMAGE_EXTENSIONS)}). "
            f"Received: calibration_data={str(folder)!r}"
        )
    return np.stack([_resized(read_image(path), input_size) for path in files])


def export_litert(
    model,
    path,
    input_size,
    quantize=False,
    calibration_data=None,
    num_calibration_images=DEFAULT_CALIBRATION_IMAGES,
    native_resize=True,
):
    """Writes a LiteRT flatbuffer for one fixed input size, batch 1.

    Args:
        model: a `RefineNet` returning logits at the input size.
        path: the `.tflite` file to write.
        input_size: `(height, width)`.
        quantize: full-integer post-training quantization: int8 weights
            and activations, uint8 raw-pixel input, int8 logits (their
            scale and zero point are in the output details).
        calibration_data: see `calibration_images`.
        num_calibration_images: at most this many calibration images.
        native_resize: bilinear resizes as `RESIZE_BILINEAR` ops (else
            the Keras gathers).

    Returns:
        `path` as a `pathlib.Path`.

    Example:

    >>> from keras_refinenet import tiny_refinenet
    >>> export_litert(tiny_refinenet(), "m.tflite", (64, 64))  # doctest: +SKIP
    PosixPath('m.tflite')
    """
    import tensorflow as tf

    path = pathlib.Path(path)
    # Calibration runs the float graph: quantized, the input is uint8.
    input_dtype = "float32" if quantize else "uint8"
    frozen = logits_function(
        model,
        input_size,
        batch_size=1,
        dtype=input_dtype,
        native_resize=native_resize,
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    if quantize:
        images = calibration_images(
            calibration_data, input_size, num_calibration_images
        )

        def representative_dataset():
            for image in images:
                yield [image[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path
