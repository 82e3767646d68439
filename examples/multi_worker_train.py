"""Multi-worker RefineNet training with `MultiWorkerMirroredStrategy`.

Run the same command on every machine, each with its own `TF_CONFIG`:

    export TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                       "task": {"type": "worker", "index": 0}}'
    python examples/multi_worker_train.py --preset refinenet101_voc \
        --dataset folder --data-dir /shared/voc --num-classes 21 \
        --epochs 50 --batch-size 16 --crop-size 512 512 --output /shared/run

`--batch-size` is the global batch, split over all workers' replicas. Only
the chief (worker 0) writes the preset, checkpoints and logs in OUTPUT;
every worker keeps its own backup there, so rerunning resumes.

    python examples/multi_worker_train.py --smoke

starts two worker processes on this machine (CPU), trains a tiny model on
synthetic data for a few steps, and checks both end with the same weights.
"""

import argparse
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

DATASETS = ("synthetic", "folder", "cityscapes")
PRECISIONS = ("mixed_float16", "mixed_bfloat16")
SMOKE_WORKERS = 2
WORKER_TIMEOUT_SECONDS = 300
WEIGHTS_FILE = "final_weights_{task}.npy"


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", default="refinenet50")
    parser.add_argument("--dataset", choices=DATASETS, default="synthetic")
    parser.add_argument("--data-dir")
    parser.add_argument("--manual-dir", help="Cityscapes zips")
    parser.add_argument("--num-classes", type=int)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument("--batch-size", type=int, default=16, help="global")
    parser.add_argument(
        "--crop-size", type=int, nargs=2, default=(512, 512), metavar=("H", "W")
    )
    parser.add_argument("--mixed-precision", choices=PRECISIONS)
    parser.add_argument("--no-weights", action="store_true")
    parser.add_argument("--output", default="runs/multi_worker")
    parser.add_argument(
        "--save-final-weights",
        action="store_true",
        help="each worker writes its final weights as a .npy to OUTPUT",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="two local workers, tiny run"
    )
    return parser.parse_args()


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def launch_local_workers(output):
    """Runs this script with --smoke as two workers of one local cluster."""
    cluster = {"worker": [f"localhost:{p}" for p in free_ports(SMOKE_WORKERS)]}
    processes = []
    for index in range(SMOKE_WORKERS):
        env = dict(
            os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2"
        )
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        command = [sys.executable, __file__, "--smoke", "--output", str(output)]
        processes.append(
            subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    failed = False
    for index, process in enumerate(processes):
        try:
            log, _ = process.communicate(timeout=WORKER_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            log, _ = process.communicate()
        lines = [
            line for line in log.splitlines() if "[keras-refinenet]" in line
        ]
        print(f"--- worker {index} (exit code {process.returncode})")
        print("\n".join(lines or log.splitlines()[-20:]))
        failed = failed or process.returncode != 0
    if failed:
        raise SystemExit("A worker failed. Received: non-zero exit codes")
    weights = [
        np.load(output / WEIGHTS_FILE.format(task=f"worker_{index}"))
        for index in range(SMOKE_WORKERS)
    ]
    difference = float(np.abs(weights[0] - weights[1]).max())
    print(f"Largest weight difference between the workers: {difference:.2e}")
    if difference > 1e-5:
        raise SystemExit(
            "The workers' weights differ. Received: largest difference "
            f"{difference:.2e}"
        )


def tiny_model(num_classes):
    from keras_refinenet import tiny_refinenet

    return tiny_refinenet(num_classes=num_classes)


def train_worker(args):
    """One worker's share of the training (reads `TF_CONFIG`)."""
    from keras_refinenet.training import distribute
    from keras_refinenet.training.trainer import TrainConfig, run_training

    built = []

    def build_model(num_classes):
        built.append(tiny_model(num_classes))
        return built[-1]

    config = TrainConfig(
        preset=args.preset,
        output=args.output,
        dataset=args.dataset,
        num_classes=args.num_classes,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        crop_size=tuple(args.crop_size),
        strategy="multi-worker",
        mixed_precision=args.mixed_precision,
        load_weights=not args.no_weights,
        verbose=2,
    )
    if args.smoke:
        config.epochs, config.steps_per_epoch, config.batch_size = 1, 2, 4
        config.crop_size, config.validation_steps = (32, 32), 0
        config.synthetic_train_images, config.synthetic_image_size = 16, 32
        config.jit_compile, config.tensorboard = False, False
    result = run_training(
        config, build_model=build_model if args.smoke else None
    )
    task = distribute.task_label()
    print(
        f"[keras-refinenet] {task}: done, chief={result['chief']}, "
        f"replicas={result['replicas']}, final loss "
        f"{result['history']['loss'][-1]:.4f}",
        flush=True,
    )
    if (args.smoke or args.save_final_weights) and built:
        weights = np.concatenate(
            [np.ravel(w) for w in built[-1].trainable_weights]
        )
        np.save(
            pathlib.Path(args.output) / WEIGHTS_FILE.format(task=task), weights
        )


def main():
    args = parse_args()
    started = time.time()
    from keras_refinenet.training.distribute import read_tf_config

    if args.smoke and not read_tf_config():
        output = pathlib.Path(
            tempfile.mkdtemp(prefix="refinenet_multi_worker_")
        )
        launch_local_workers(output)
        print(f"Done in {time.time() - started:.1f} s")
        return
    train_worker(args)


if __name__ == "__main__":
    main()
