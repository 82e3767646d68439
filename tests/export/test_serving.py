"""Wire formats of TF Serving, checked against the SavedModel's outputs.

No server binary can be installed, so the tests play the server: they parse
requests as TF Serving does (official protos for gRPC; the documented JSON
mapping for REST), run the loaded SavedModel, and encode its answer.
"""

import base64
import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import encode
from tensorflow_serving.apis import predict_pb2

from keras_refinenet import serving


def run_grpc(loaded, request_bytes):
    request = predict_pb2.PredictRequest.FromString(request_bytes)
    signature = loaded.signatures[request.model_spec.signature_name]
    inputs = {
        name: tf.constant(tf.make_ndarray(proto))
        for name, proto in request.inputs.items()
    }
    outputs = signature(**inputs)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    return request, response.SerializeToString(), outputs


def decode_json_input(value):
    """TF Serving's JSON input mapping: `{"b64": ...}` is binary data."""
    if isinstance(value, dict):
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [decode_json_input(item) for item in value]
    return value


def json_output(name, value):
    """TF Serving's JSON output mapping (`*_bytes` strings in base64)."""
    if value.dtype == object:
        if name.endswith("_bytes"):
            return [{"b64": base64.b64encode(v).decode()} for v in value]
        return [v.decode() for v in value]
    return value.tolist()


def run_rest(loaded, body_text):
    body = json.loads(body_text)
    signature = loaded.signatures[body.get("signature_name", "serving_default")]
    input_specs = signature.structured_input_signature[1]
    if "instances" in body:
        columns = {
            name: [row[name] for row in body["instances"]]
            for name in body["instances"][0]
        }
    else:
        columns = body["inputs"]
    inputs = {
        name: tf.constant(
            decode_json_input(values), dtype=input_specs[name].dtype
        )
        for name, values in columns.items()
    }
    outputs = {k: v.numpy() for k, v in signature(**inputs).items()}
    if "instances" in body:
        columns = {k: json_output(k, v) for k, v in outputs.items()}
        merged = [
            {name: values[index] for name, values in columns.items()}
            for index in range(len(body["instances"]))
        ]
        response = {"predictions": merged}
    else:
        response = {
            "outputs": {
                name: json_output(name, value)
                for name, value in outputs.items()
            }
        }
    return json.dumps(response), outputs


def test_grpc_images_request_round_trip(loaded, images):
    request = serving.build_predict_request(
        images=images, model_name="roads", model_version=4
    )
    parsed, response_bytes, outputs = run_grpc(
        loaded, request.SerializeToString()
    )
    assert parsed.model_spec.name == "roads"
    assert parsed.model_spec.version.value == 4
    assert parsed.model_spec.signature_name == "serving_default"
    assert parsed.inputs["images"].dtype == tf.uint8.as_datatype_enum
    np.testing.assert_array_equal(
        tf.make_ndarray(parsed.inputs["images"]), images
    )
    result = serving.parse_predict_response(
        predict_pb2.PredictResponse.FromString(response_bytes)
    )
    np.testing.assert_array_equal(
        result["class_ids"], outputs["class_ids"].numpy()
    )
    np.testing.assert_array_equal(
        result["probabilities"], outputs["probabilities"].numpy()
    )
    assert result["error"].tolist() == ["", ""]


def test_grpc_bytes_request_and_error_reply(loaded, images):
    request = serving.build_predict_request(
        image_bytes=[encode(images[0]), b"garbage"],
        output_filter=["class_ids", "error"],
    )
    assert list(request.output_filter) == ["class_ids", "error"]
    assert request.model_spec.signature_name == "predict_image_bytes"
    assert request.inputs["image_bytes"].dtype == tf.string.as_datatype_enum
    _, response_bytes, _ = run_grpc(loaded, request.SerializeToString())
    result = serving.parse_predict_response(
        predict_pb2.PredictResponse.FromString(response_bytes)
    )
    assert result["error"][1].startswith("undecodable image data")
    assert result["class_ids"].shape == (2, 0, 0)


@pytest.mark.parametrize("body_format", ["instances", "inputs"])
@pytest.mark.parametrize("kind", ["images", "image_bytes"])
def test_rest_bodies_round_trip(loaded, images, body_format, kind):
    data = (
        {"images": images}
        if kind == "images"
        else {"image_bytes": [encode(image) for image in images]}
    )
    body = serving.rest_request_body(**data, format=body_format)
    response_text, outputs = run_rest(loaded, json.dumps(body))
    result = serving.parse_rest_response(response_text)
    direct = {
        k: v.numpy()
        for k, v in loaded.signatures["serving_default"](
            images=tf.constant(images)
        ).items()
    }
    np.testing.assert_array_equal(result["class_ids"], direct["class_ids"])
    np.testing.assert_allclose(
        result["probabilities"], direct["probabilities"], atol=1e-6
    )
    assert result["class_ids"].dtype == np.int32
    assert result["error"].tolist() == ["", ""]


def test_rest_body_layout_matches_tf_serving_docs():
    body = serving.rest_request_body(image_bytes=[b"\x01\x02"])
    assert body == {
        "signature_name": "predict_image_bytes",
        "instances": [{"image_bytes": {"b64": "AQI="}}],
    }
    image = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    body = serving.rest_request_body(images=image, format="inputs")
    assert body["inputs"]["images"] == [image.tolist()]
    assert serving.rest_predict_url("srv", "m", 9000) == (
        "http://srv:9000/v1/models/m:predict"
    )


def test_rest_error_reply_and_bad_arguments():
    with pytest.raises(serving.ServingError, match="bad input"):
        serving.parse_rest_response('{"error": "bad input"}')
    with pytest.raises(ValueError, match="exactly one"):
        serving.build_predict_request()
    with pytest.raises(ValueError, match="uint8"):
        serving.rest_request_body(images=np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="output_filter"):
        serving.build_predict_request(image_bytes=b"x", output_filter=["x"])
    with pytest.raises(ValueError, match="format"):
        serving.rest_request_body(image_bytes=b"x", format="rows")
