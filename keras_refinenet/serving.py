"""Client helpers for a RefineNet served by TensorFlow Serving.

gRPC: `build_predict_request` makes a `PredictRequest` (from the official
`tensorflow-serving-api` protos) and `parse_predict_response` turns the
`PredictResponse` into numpy arrays. REST: `rest_request_body` makes the
JSON body of `POST /v1/models/NAME:predict` (row `instances` or columnar
`inputs` format, encoded images as `{"b64": ...}`) and
`parse_rest_response` reads the answer. The signature and tensor names are
those written by `keras_refinenet.export.saved_model.export_saved_model`.
"""

import base64

import numpy as np

from keras_refinenet.constants import (
    IMAGE_BYTES_SIGNATURE,
    IMAGES_SIGNATURE,
    RGB_CHANNELS,
)

DEFAULT_MODEL_NAME = "refinenet"
DEFAULT_REST_PORT = 8501
DEFAULT_GRPC_PORT = 8500
IMAGES_INPUT = "images"
IMAGE_BYTES_INPUT = "image_bytes"
OUTPUT_DTYPES = {
    "class_ids": np.int32,
    "probabilities": np.float32,
    "error": object,
}
REST_FORMATS = ("instances", "inputs")
B64_KEY = "b64"


class ServingError(RuntimeError):
    """TensorFlow Serving answered a request with an error."""


def _check_inputs(images, image_bytes):
    if (images is None) == (image_bytes is None):
        raise ValueError(
            "Pass exactly one of `images` and `image_bytes`. Received: "
            f"images={'None' if images is None else 'an array'}, "
            f"image_bytes={'None' if image_bytes is None else 'data'}"
        )
    if images is not None:
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[np.newaxis]
        if images.ndim != 4 or images.shape[-1] != RGB_CHANNELS:
            raise ValueError(
                "`images` must be (height, width, 3) or "
                f"(batch, height, width, 3). Received: images.shape="
                f"{images.shape}"
            )
        if images.dtype != np.uint8:
            raise ValueError(
                "`images` must be uint8 (the served signature's dtype). "
                f"Received: images.dtype={images.dtype}"
            )
        return images, None
    if isinstance(image_bytes, (bytes, bytearray)):
        image_bytes = [image_bytes]
    image_bytes = [bytes(data) for data in image_bytes]
    if not image_bytes:
        raise ValueError(
            "`image_bytes` must hold at least one encoded image. "
            f"Received: image_bytes={image_bytes!r}"
        )
    return None, image_bytes


def _signature(images, signature_name):
    if signature_name is not None:
        return signature_name
    return IMAGES_SIGNATURE if images is not None else IMAGE_BYTES_SIGNATURE


def build_predict_request(
    images=None,
    image_bytes=None,
    model_name=DEFAULT_MODEL_NAME,
    signature_name=None,
    model_version=None,
    output_filter=None,
):
    """A gRPC `PredictRequest` for the exported RefineNet.

    Args:
        images: uint8 `(h, w, 3)` or `(b, h, w, 3)` images, for the
            `serving_default` signature.
        image_bytes: encoded PNG/JPEG `bytes` or a list of them (one size),
            for the `predict_image_bytes` signature.
        model_name: the model name TF Serving serves (`--model_name`).
        signature_name: default: the signature matching the input.
        model_version: an int version, `None` for the latest.
        output_filter: names of the outputs to send back (e.g.
            `["class_ids", "error"]` to skip the large probabilities);
            `None` for all.

    Returns:
        A `tensorflow_serving.apis.predict_pb2.PredictRequest`.

    Example:

    >>> request = build_predict_request(image_bytes=b"...", model_name="m")
    >>> request.model_spec.signature_name
    'predict_image_bytes'
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    images, image_bytes = _check_inputs(images, image_bytes)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = _signature(images, signature_name)
    if model_version is not None:
        request.model_spec.version.value = int(model_version)
    if output_filter is not None:
        unknown = sorted(set(output_filter) - set(OUTPUT_DTYPES))
        if unknown:
            raise ValueError(
                f"`output_filter` names must be among {sorted(OUTPUT_DTYPES)}."
                f" Received: output_filter={list(output_filter)!r}"
            )
        request.output_filter.extend(output_filter)
    if images is not None:
        request.inputs[IMAGES_INPUT].CopyFrom(tf.make_tensor_proto(images))
    else:
        request.inputs[IMAGE_BYTES_INPUT].CopyFrom(
            tf.make_tensor_proto(image_bytes, dtype=tf.string)
        )
    return request


def _decode_strings(values):
    return np.vectorize(
        lambda value: (
            value.decode("utf-8", "replace")
            if isinstance(value, bytes)
            else value
        ),
        otypes=[object],
    )(values)


def parse_predict_response(response):
    """Numpy arrays from a gRPC `PredictResponse`.

    Args:
        response: a `tensorflow_serving.apis.predict_pb2.PredictResponse`.

    Returns:
        Dict output name -> numpy array (`error` as Python strings).

    Example:

    >>> from tensorflow_serving.apis import predict_pb2
    >>> parse_predict_response(predict_pb2.PredictResponse())
    {}
    """
    import tensorflow as tf

    outputs = {}
    for name, proto in response.outputs.items():
        value = tf.make_ndarray(proto)
        if value.dtype == object:
            value = _decode_strings(value)
        outputs[name] = value
    return outputs


def rest_predict_url(
    host="localhost",
    model_name=DEFAULT_MODEL_NAME,
    port=DEFAULT_REST_PORT,
    model_version=None,
):
    """The REST predict URL, e.g. `http://localhost:8501/v1/models/m:predict`.

    Args:
        host: server host name.
        model_name: the served model name.
        port: the REST port (`--rest_api_port`).
        model_version: an int version, `None` for the latest.

    Returns:
        The URL string.

    Example:

    >>> rest_predict_url(model_name="refinenet", model_version=2)
    'http://localhost:8501/v1/models/refinenet/versions/2:predict'
    """
    version = "" if model_version is None else f"/versions/{model_version}"
    return f"http://{host}:{port}/v1/models/{model_name}{version}:predict"


def rest_request_body(
    images=None, image_bytes=None, signature_name=None, format="instances"
):
    """The JSON body (a dict) of a REST predict request.

    Args:
        images: uint8 images, see `build_predict_request`.
        image_bytes: encoded images, sent as `{"b64": ...}`.
        signature_name: default: the signature matching the input.
        format: `"instances"` (row format, one entry per image) or
            `"inputs"` (columnar format).

    Returns:
        A JSON-serialisable dict; send it with `json.dumps`.

    Example:

    >>> rest_request_body(image_bytes=b"abc")["instances"]
    [{'image_bytes': {'b64': 'YWJj'}}]
    """
    if format not in REST_FORMATS:
        raise ValueError(
            f"`format` must be one of {REST_FORMATS}. Received: "
            f"format={format!r}"
        )
    images, image_bytes = _check_inputs(images, image_bytes)
    if images is not None:
        name, values = IMAGES_INPUT, [image.tolist() for image in images]
    else:
        name = IMAGE_BYTES_INPUT
        values = [
            {B64_KEY: base64.b64encode(data).decode("ascii")}
            for data in image_bytes
        ]
    body = {"signature_name": _signature(images, signature_name)}
    if format == "instances":
        body["instances"] = [{name: value} for value in values]
    else:
        body["inputs"] = {name: values}
    return body


def _decode_json_value(name, value):
    if isinstance(value, dict) and B64_KEY in value:
        return base64.b64decode(value[B64_KEY])
    if isinstance(value, list):
        return [_decode_json_value(name, item) for item in value]
    return value


def _as_array(name, values):
    values = _decode_json_value(name, values)
    dtype = OUTPUT_DTYPES.get(name)
    if dtype is object:
        return _decode_strings(np.asarray(values, dtype=object))
    return np.asarray(values, dtype=dtype)


def parse_rest_response(body):
    """Numpy arrays from a REST predict response body.

    Args:
        body: the decoded JSON (a dict) or its text.

    Returns:
        Dict output name -> numpy array, batch first.

    Raises:
        ServingError: the server answered with `{"error": ...}`.

    Example:

    >>> parse_rest_response('{"outputs": {"class_ids": [[[1]]]}}')
    {'class_ids': array([[[1]]], dtype=int32)}
    """
    import json

    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    if "error" in body and not ({"predictions", "outputs"} & set(body)):
        raise ServingError(body["error"])
    if "predictions" in body:
        predictions = body["predictions"]
        if predictions and isinstance(predictions[0], dict):
            names = predictions[0].keys()
            return {
                name: _as_array(name, [row[name] for row in predictions])
                for name in names
            }
        return {"predictions": _as_array(None, predictions)}
    if "outputs" in body:
        outputs = body["outputs"]
        if isinstance(outputs, dict):
            return {name: _as_array(name, v) for name, v in outputs.items()}
        return {"outputs": _as_array(None, outputs)}
    raise ValueError(
        "A REST predict response has `predictions` or `outputs`. "
        f"Received: keys {sorted(body)}"
    )
