"""Shared pieces of the benchmark scripts: models, FLOPs, timing, memory.

Every measurement is a median over repeats after warm-up runs. Scripts run
each configuration in its own subprocess (`run_isolated`) so that the peak
resident memory (`ru_maxrss`) belongs to that configuration alone.
"""

import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

from keras_refinenet.inference.process_settings import ONEDNN_VARIABLE

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# name -> RefineNet constructor arguments (besides the backbone).
LIGHT_WEIGHT_101 = {
    "adaptive_units": 0,
    "output_units": 0,
    "projection_kernel_size": 1,
    "fusion_kernel_size": 1,
    "crp_kernel_size": 1,
}
MODELS = {
    "refinenet101": {"depth": 101, "decoder": {}},
    "lw_refinenet101": {"depth": 101, "decoder": LIGHT_WEIGHT_101},
    "refinenet50": {"depth": 50, "decoder": {}},
    "lw_refinenet50": {"depth": 50, "decoder": LIGHT_WEIGHT_101},
    "lw_mobilenet_v3": {"mobilenet": "large", "decoder": {}},
}
NUM_CLASSES = 19
MARKER = "BENCHMARK_RESULT "
CONV_RATE_SHAPE = (1, 128, 256, 256)  # stride-4 decoder map at 512x1024


def parse_size(text):
    """`"512x1024"` -> `(512, 1024)`."""
    height, width = text.lower().split("x")
    return int(height), int(width)


DECODER_CONVS = ("direct", "winograd")
# CPU flags that decide which kernels oneDNN and PyTorch can use.
ISA_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)


def machine_description():
    """Lines naming the CPU, its ISA flags, library versions and oneDNN."""
    import importlib.metadata

    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    versions = []
    for package in ("tensorflow", "keras", "torch"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} not installed")
    onednn = os.environ.get(ONEDNN_VARIABLE)
    setting = "default" if onednn is None else f"{ONEDNN_VARIABLE}={onednn}"
    state = f"{onednn_state()} ({setting})"
    present = [flag for flag in ISA_FLAGS if flag in flags]
    return [
        f"CPU: {model}, {os.cpu_count()} logical cores",
        f"ISA: {' '.join(present) or 'none of ' + ' '.join(ISA_FLAGS)}",
        f"versions: {', '.join(versions)}",
        f"oneDNN (TensorFlow): {state}",
        f"load average: {load_average()}",
    ]


def onednn_state():
    """Whether TensorFlow's oneDNN ops are on in a process with this env.

    TensorFlow turns them on by default only on CPUs with AVX-512 VNNI,
    AVX-512 BF16, AVX-VNNI or AMX, so the default differs between x86 kinds;
    this asks TensorFlow itself, in a child process (the import costs
    about 0.7 GiB that the driver should not hold).
    """
    probe = (
        "from keras_refinenet.inference.fast_path import "
        "tensorflow_onednn_enabled as on; print(on())"
    )
    try:
        completed = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    answer = completed.stdout.strip().splitlines()[-1:] or ["unknown"]
    return {"True": "on", "False": "off"}.get(answer[0], "unknown")


def bf16_supported():
    """Whether this CPU has bfloat16 instructions (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def build_keras_model(
    name,
    upsample_output=False,
    dtype=None,
    decoder_conv="direct",
    **task_arguments,
):
    """A randomly initialised Keras RefineNet of benchmark model `name`."""
    from keras_refinenet.models.encoders import resnet_backbone
    from keras_refinenet.models.refinenet import RefineNet

    spec = MODELS[name]
    if "mobilenet" in spec:
        from keras_refinenet.models.encoders.mobilenet import (
            LIGHT_WEIGHT_DECODER,
            mobilenet_v3_backbone,
        )

        backbone = mobilenet_v3_backbone(spec["mobilenet"], dtype=dtype)
        decoder = LIGHT_WEIGHT_DECODER
    else:
        backbone = resnet_backbone(spec["depth"], "keras_hub", dtype=dtype)
        decoder = spec["decoder"]
    return RefineNet(
        backbone,
        num_classes=NUM_CLASSES,
        upsample_output=upsample_output,
        dtype=dtype,
        decoder_conv=decoder_conv,
        **decoder,
        **task_arguments,
    )


def build_torch_model(name):
    """The PyTorch reference of benchmark model `name`, in `eval()` mode."""
    # The PyTorch reference is a test oracle in `tests/convert/`.
    repository = pathlib.Path(__file__).resolve().parents[1]
    if str(repository) not in sys.path:
        sys.path.insert(0, str(repository))
    from tests.convert.reference_pytorch import build_reference_refinenet

    spec = MODELS[name]
    if "mobilenet" in spec:
        raise ValueError(
            f"No PyTorch reference for {name}. Received: name={name!r}"
        )
    return build_reference_refinenet(
        spec["depth"],
        num_classes=NUM_CLASSES,
        light_weight=spec["decoder"] is LIGHT_WEIGHT_101,
    )


def median_time(function, repeats, warmup):
    """Median seconds of `function()` over `repeats` after `warmup` calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def interleaved_median_times(functions, repeats, warmup):
    """Medians and times of `functions` called in turn, round by round, so
    that a load change or a slow process hits each of them alike."""
    for _ in range(warmup):
        for function in functions:
            function()
    times = [[] for _ in functions]
    for _ in range(repeats):
        for function, series in zip(functions, times):
            start = time.perf_counter()
            function()
            series.append(time.perf_counter() - start)
    return [(statistics.median(series), series) for series in times]


def peak_rss_gib():
    """Peak resident memory of this process (Linux `ru_maxrss` is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def keras_conv_flops(model, images):
    """FLOPs (2 per multiply-add) of the convolutions in one forward call.

    Runs `model` eagerly once with the `call` of `Conv2D`, `DepthwiseConv2D`
    and `WinogradConv2D` wrapped to record output shapes, so nested layers
    are counted; Winograd convolutions count as their direct equivalent.
    """
    import keras

    from keras_refinenet.layers.winograd_conv import WinogradConv2D

    records = []
    originals = {}

    def wrap(cls):
        original = cls.call
        originals[cls] = original

        def call(self, inputs, *args, **kwargs):
            outputs = original(self, inputs, *args, **kwargs)
            # Conv2D kernels are (kh, kw, cin / groups, cout); depthwise
            # kernels (kh, kw, cin, multiplier) use one input per output.
            kernel = self.kernel.shape
            per_output = kernel[0] * kernel[1]
            if cls is not keras.layers.DepthwiseConv2D:
                per_output *= kernel[2]
            count = 1
            for dim in outputs.shape:
                count *= int(dim)
            records.append(2 * count * per_output)
            return outputs

        cls.call = call

    try:
        wrap(keras.layers.Conv2D)
        wrap(keras.layers.DepthwiseConv2D)
        wrap(WinogradConv2D)
        model(images, training=False)
    finally:
        for cls, original in originals.items():
            cls.call = original
    return sum(records)


def torch_conv_flops(model, images):
    """FLOPs (2 per multiply-add) of `torch.nn.Conv2d`s in one forward."""
    import torch

    records = []

    def hook(module, inputs, output):
        kernel = module.weight.shape
        per_output = kernel[1] * kernel[2] * kernel[3]
        records.append(2 * output.numel() * per_output)

    handles = [
        module.register_forward_hook(hook)
        for module in model.modules()
        if isinstance(module, torch.nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return sum(records)


def conv3x3_rate(repeats=3, warmup=1, shape=CONV_RATE_SHAPE):
    """GFLOP/s of one large 3x3 'same' TF convolution on this machine."""
    import numpy as np
    import tensorflow as tf

    batch, height, width, channels = shape
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape).astype("float32"))
    kernel = tf.constant(
        rng.normal(size=(3, 3, channels, channels)).astype("float32")
    )
    conv = tf.function(lambda: tf.nn.conv2d(x, kernel, 1, "SAME"))
    seconds, _ = median_time(
        lambda: conv().numpy(), repeats=repeats, warmup=warmup
    )
    flops = 2 * batch * height * width * 9 * channels * channels
    return flops / seconds / 1e9


def emit(result):
    """Prints one result line that `run_isolated` picks up."""
    print(MARKER + json.dumps(result), flush=True)


def run_isolated(script, arguments, timeout=None, environment=None):
    """Runs `script` in a fresh Python; returns its `emit`ted results.

    `environment` adds variables (e.g. `TF_ENABLE_ONEDNN_OPTS`).
    """
    completed = subprocess.run(
        [sys.executable, script, *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(environment or {})},
    )
    results = [
        json.loads(line[len(MARKER) :])
        for line in completed.stdout.splitlines()
        if line.startswith(MARKER)
    ]
    if completed.returncode or not results:
        tail = (completed.stderr or completed.stdout)[-2000:]
        return [
            {
                "error": tail,
                "returncode": completed.returncode,
                "arguments": arguments,
            }
        ]
    return results


def load_average():
    return os.getloadavg()
