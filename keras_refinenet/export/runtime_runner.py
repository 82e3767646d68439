"""Runs an exported file in its own runtime; standalone, imports no Keras.

`python runtime_runner.py FORMAT MODEL IMAGES.npy LOGITS.npy [THREADS]`
reads uint8 images `(n, height, width, 3)`, runs them one at a time and
writes float32 logits `(n, height, width, classes)`. It imports only numpy
and the format's runtime (never `keras_refinenet`, Keras or, except for
`saved_model`, TensorFlow), so it shows what a deployment sees. Int8
outputs are dequantized with the file's scale and zero point.
"""

import json
import os
import sys

# Run as a script, this folder is on sys.path, and its onnx.py and
# openvino.py would shadow the runtimes.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import numpy as np  # noqa: E402

# OpenVINO's CPU plugin runs in bf16 on CPUs that have it unless told not to.
OPENVINO_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def onnx_runner(path, threads=None):
    """`images -> logits` with ONNX Runtime's CPU provider."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: images})[0]


def litert_runner(path, threads=None):
    """`images -> logits` with the LiteRT interpreter (`ai-edge-litert`)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    image_details = interpreter.get_input_details()[0]
    logits_details = interpreter.get_output_details()[0]

    def run(images):
        interpreter.set_tensor(image_details["index"], images)
        interpreter.invoke()
        logits = interpreter.get_tensor(logits_details["index"])
        if logits.dtype != np.float32:
            scale, zero_point = logits_details["quantization"]
            logits = (logits.astype(np.float32) - zero_point) * scale
        return logits

    return run


def openvino_runner(path, threads=None):
    """`images -> logits` with the OpenVINO CPU runtime in float32."""
    import openvino

    config = dict(OPENVINO_CONFIG)
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = openvino.Core().compile_model(str(path), "CPU", config)
    output = compiled.outputs[0]
    return lambda images: compiled([images])[output]


def saved_model_runner(path, threads=None):
    """`images -> log-probabilities` of a TF Serving SavedModel."""
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    return lambda images: np.log(
        serve(images=tf.constant(images))["probabilities"].numpy()
    )


RUNNERS = {
    "onnx": onnx_runner,
    "litert": litert_runner,
    "litert-int8": litert_runner,
    "openvino": openvino_runner,
    "saved_model": saved_model_runner,
}


def run_file(format, path, images, threads=None):
    """Logits of every image (one at a time) from the exported file."""
    run = RUNNERS[format](path, threads)
    return np.concatenate([run(image[None]) for image in images])


def main(argv):
    """Runs an exported file on saved images and saves its logits.

    Args:
        argv: `FORMAT EXPORT_PATH IMAGES.npy LOGITS.npy [THREADS]`.
    """
    format, path, images_path, logits_path = argv[:4]
    threads = int(argv[4]) if len(argv) > 4 else None
    images = np.load(images_path)
    np.save(logits_path, run_file(format, path, images, threads))
    imported = sorted(
        name for name in ("keras_refinenet", "keras") if name in sys.modules
    )
    print(json.dumps({"imported": imported}))


if __name__ == "__main__":
    main(sys.argv[1:])
