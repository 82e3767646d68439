"""Query a RefineNet served by TensorFlow Serving over REST.

Sends PNG/JPEG files to `POST /v1/models/NAME:predict` (the
`predict_image_bytes` signature written by `export_for_tf_serving.py`),
prints the classes found and writes a colour overlay per image.

    python examples/serving_client.py --url http://localhost:8501 \
        --model-name refinenet --image frame.png --output served/
    python examples/serving_client.py --smoke --output /tmp/served

`--smoke` exports a tiny model and answers the requests with a local
stand-in for TensorFlow Serving: the same SavedModel behind the same REST
protocol, in a thread of this process.
"""

import argparse
import io
import json
import pathlib
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

TIMEOUT_SECONDS = 60


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", default="http://localhost:8501")
    parser.add_argument("--model-name", default="refinenet")
    parser.add_argument("--model-version", type=int)
    parser.add_argument("--image", nargs="+", default=[], help="image files")
    parser.add_argument("--output", default="served")
    parser.add_argument(
        "--preset",
        help="preset whose class names and palette colour the overlay",
    )
    parser.add_argument("--smoke", action="store_true", help="local stand-in")
    args = parser.parse_args()
    if not args.smoke and not args.image:
        parser.error("--image is required without --smoke. Received: image=[]")
    return args


class StandInServer:
    """TensorFlow Serving's REST predict API over a SavedModel folder."""

    def __init__(self, model_base, model_name):
        import tensorflow as tf

        version = max(
            int(p.name)
            for p in pathlib.Path(model_base).iterdir()
            if p.name.isdigit()
        )
        loaded = tf.saved_model.load(
            str(pathlib.Path(model_base) / str(version))
        )
        self.model_name = model_name
        self.signatures = loaded.signatures
        self.server = ThreadingHTTPServer(("localhost", 0), self._handler())
        self.url = f"http://localhost:{self.server.server_address[1]}"

    def predict(self, body):
        import base64

        import tensorflow as tf

        signature = self.signatures[
            body.get("signature_name", "serving_default")
        ]
        rows = body["instances"]
        name = next(iter(rows[0]))
        values = [row[name] for row in rows]
        if name == "image_bytes":
            values = [base64.b64decode(value["b64"]) for value in values]
            tensor = tf.constant(values)
        else:
            tensor = tf.constant(np.asarray(values, np.uint8))
        outputs = signature(**{name: tensor})
        columns = {k: v.numpy() for k, v in outputs.items()}
        predictions = []
        for index in range(len(values)):
            row = {}
            for key, column in columns.items():
                value = column[index]
                row[key] = (
                    value.decode()
                    if isinstance(value, bytes)
                    else (value.tolist())
                )
            predictions.append(row)
        return {"predictions": predictions}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                expected = f"/v1/models/{server.model_name}"
                if not self.path.startswith(expected):
                    self._reply(404, {"error": f"No model at {self.path}"})
                    return
                length = int(self.headers["Content-Length"])
                try:
                    body = json.loads(self.rfile.read(length))
                    self._reply(200, server.predict(body))
                except Exception as error:
                    self._reply(400, {"error": str(error)})

            def _reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()


def smoke_setup(folder):
    """Exports a tiny model and writes two synthetic PNG images."""
    from keras_refinenet import tiny_refinenet
    from keras_refinenet.data import make_synthetic_arrays
    from keras_refinenet.export.saved_model import export_saved_model

    model = tiny_refinenet(num_classes=4)
    export_saved_model(model, folder / "models")
    images, _ = make_synthetic_arrays(2, image_size=(64, 96), seed=5)
    paths = []
    for index, image in enumerate(images):
        path = folder / f"image_{index}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return folder / "models", paths


def predict_rest(url, model_name, image_bytes, model_version=None):
    """Posts encoded images and returns the parsed outputs."""
    from keras_refinenet.serving import (
        parse_rest_response,
        rest_predict_url,
        rest_request_body,
    )

    host_port = url.split("://", 1)[-1]
    host, _, port = host_port.partition(":")
    endpoint = rest_predict_url(
        host=host,
        model_name=model_name,
        port=int(port or 80),
        model_version=model_version,
    )
    body = json.dumps(rest_request_body(image_bytes=image_bytes)).encode()
    request = urllib.request.Request(
        endpoint, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
            return parse_rest_response(answer.read())
    except urllib.error.HTTPError as error:
        return parse_rest_response(error.read())


def run_client(args, url, image_paths):
    from keras_refinenet.inference.visualize import (
        overlay,
        palette_from_metadata,
        preset_palette,
        write_png,
    )

    output = pathlib.Path(args.output)
    for path in image_paths:
        data = pathlib.Path(path).read_bytes()
        outputs = predict_rest(url, args.model_name, [data], args.model_version)
        if outputs["error"][0]:
            print(f"{path}: the server refused it: {outputs['error'][0]}")
            continue
        class_ids = outputs["class_ids"][0]
        num_classes = outputs["probabilities"].shape[-1]
        if args.preset:
            palette, names = preset_palette(args.preset, num_classes)
        else:
            palette, names = palette_from_metadata({}, num_classes)
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        target = output / f"{pathlib.Path(path).stem}_overlay.png"
        write_png(overlay(image, class_ids, palette=palette), target)
        present = [names[i] for i in np.unique(class_ids)]
        print(f"{path}: {class_ids.shape} class ids, {present} -> {target}")


def main():
    args = parse_args()
    started = time.time()
    if args.smoke:
        folder = pathlib.Path(tempfile.mkdtemp(prefix="refinenet_serving_"))
        model_base, image_paths = smoke_setup(folder)
        not_an_image = folder / "not_an_image.png"
        not_an_image.write_bytes(b"plain text, not a PNG")
        with StandInServer(model_base, args.model_name) as server:
            print(f"Stand-in TensorFlow Serving REST API at {server.url}")
            run_client(args, server.url, image_paths + [str(not_an_image)])
    else:
        run_client(args, args.url, args.image)
    print(f"Done in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
