import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest
import tensorflow as tf

from keras_refinenet.training import distribute

WORKER_SCRIPT = pathlib.Path(__file__).with_name("distributed_worker.py")
PROCESS_TIMEOUT = 240


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _start(mode, result_path, tf_config=None):
    env = dict(os.environ)
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, str(WORKER_SCRIPT), mode, str(result_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process):
    try:
        output, _ = process.communicate(timeout=PROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"worker timed out:\n{output[-3000:]}")
    return process.returncode, output


def _run_two_workers(mode, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    processes = [
        _start(
            mode,
            tmp_path / f"worker{index}.json",
            {"cluster": cluster, "task": {"type": "worker", "index": index}},
        )
        for index in range(2)
    ]
    return [_finish(process) for process in processes]


def _keras_functions():
    from keras.src.backend.tensorflow import trainer as trainer_module

    return (
        trainer_module.TensorFlowTrainer._maybe_symbolic_build,
        trainer_module.reduce_per_replica,
    )


class _StandInMultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """Passes the multi-worker type check without starting a cluster."""

    def __init__(self):
        pass


def test_probe_finds_both_failures_of_the_installed_keras():
    """Keras 3.15.1 still has issue 20585; drop the fixes once it says no."""
    assert distribute.keras_issue_20585_symptoms() == {
        distribute.SYMBOLIC_BUILD_SYMPTOM: True,
        distribute.SCALAR_METRIC_SYMPTOM: True,
    }


def test_fixes_are_active_only_inside_the_scope():
    originals = _keras_functions()
    with distribute.keras_multi_worker_fixes(
        _StandInMultiWorkerStrategy()
    ) as patched:
        inside = _keras_functions()
        assert patched == (
            distribute.SYMBOLIC_BUILD_SYMPTOM,
            distribute.SCALAR_METRIC_SYMPTOM,
        )
        assert all(
            getattr(function, "keras_refinenet_fix", None)
            == distribute.KERAS_ISSUE_20585
            for function in inside
        )
        # The patched functions pass the probe that the originals fail.
        assert not any(distribute.keras_issue_20585_symptoms().values())
    assert _keras_functions() == originals
    assert all(distribute.keras_issue_20585_symptoms().values())


def test_fixes_are_undone_after_an_error():
    originals = _keras_functions()
    with pytest.raises(RuntimeError, match="fit failed"):
        with distribute.keras_multi_worker_fixes(_StandInMultiWorkerStrategy()):
            raise RuntimeError("fit failed")
    assert _keras_functions() == originals


def test_fixes_skip_other_strategies_and_fixed_keras(monkeypatch):
    originals = _keras_functions()
    with distribute.keras_multi_worker_fixes(
        distribute.get_strategy("default")
    ) as patched:
        assert patched == ()
        assert _keras_functions() == originals
    monkeypatch.setattr(
        distribute,
        "keras_issue_20585_symptoms",
        lambda: {
            distribute.SYMBOLIC_BUILD_SYMPTOM: False,
            distribute.SCALAR_METRIC_SYMPTOM: True,
        },
    )
    with distribute.keras_multi_worker_fixes(
        _StandInMultiWorkerStrategy()
    ) as patched:
        assert patched == (distribute.SCALAR_METRIC_SYMPTOM,)
        build, reduce = _keras_functions()
        assert build == originals[0] and reduce != originals[1]
    assert _keras_functions() == originals


@pytest.mark.parametrize(
    "tf_config, chief, label",
    [
        ({}, True, "chief"),
        (
            {
                "cluster": {"worker": ["a:1", "b:1"]},
                "task": {"type": "worker", "index": 0},
            },
            True,
            "worker_0",
        ),
        (
            {
                "cluster": {"worker": ["a:1", "b:1"]},
                "task": {"type": "worker", "index": 1},
            },
            False,
            "worker_1",
        ),
        (
            {
                "cluster": {"chief": ["c:1"], "worker": ["a:1"]},
                "task": {"type": "worker", "index": 0},
            },
            False,
            "worker_0",
        ),
        (
            {
                "cluster": {"chief": ["c:1"], "worker": ["a:1"]},
                "task": {"type": "chief", "index": 0},
            },
            True,
            "chief_0",
        ),
    ],
)
def test_chief_from_tf_config(tf_config, chief, label):
    assert distribute.is_chief(tf_config) is chief
    assert distribute.task_label(tf_config) == label


def test_bad_tf_config_is_reported(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="Received: TF_CONFIG="):
        distribute.read_tf_config()


def test_batch_sizes_and_names():
    strategy = distribute.get_strategy("default")
    assert distribute.replica_batch_sizes(strategy, 6) == (6, 6)
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        distribute.replica_batch_sizes(strategy, 0)
    with pytest.raises(ValueError, match="Received: name='gpu'"):
        distribute.get_strategy("gpu")


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    result_path = tmp_path / "result.json"
    code, output = _finish(_start("mirrored", result_path))
    assert code == 0, output[-3000:]
    result = json.loads(result_path.read_text())
    assert result["replicas"] == 2
    assert (result["per_replica_batch"], result["global_batch"]) == (4, 8)
    assert all(loss == loss for loss in result["history"]["loss"])
    assert "val_mean_iou" in result["history"]
    plain, multiplied = result["multiplier_steps"]
    assert plain > 0 and multiplied == pytest.approx(10 * plain)


@pytest.mark.large
def test_multi_worker_fit_fails_without_the_fixes(tmp_path):
    """Keeps the probe honest: the unpatched Keras fails for real."""
    results = _run_two_workers("multi-worker-unpatched", tmp_path)
    if all(code == 0 for code, _ in results):
        pytest.fail(
            "multi-worker fit works without the fixes on this Keras: "
            "keras_issue_20585_symptoms() should report no failures"
        )


def test_multi_worker_fit_with_the_fixes(tmp_path):
    results = _run_two_workers("multi-worker", tmp_path)
    for code, output in results:
        assert code == 0, output[-3000:]
    worker0, worker1 = (
        json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2)
    )
    assert worker0["patched"] == [
        distribute.SYMBOLIC_BUILD_SYMPTOM,
        distribute.SCALAR_METRIC_SYMPTOM,
    ]
    assert worker0["replicas"] == 2
    assert (worker0["chief"], worker1["chief"]) == (True, False)
    assert worker0["per_replica_batch"] == 4
    # Synchronous training: both workers report the same global numbers.
    history0, history1 = worker0["history"], worker1["history"]
    assert sorted(history0) == sorted(history1)
    for key, values in history0.items():
        assert values == pytest.approx(history1[key]), key
    assert len(worker0["history"]["val_mean_iou"]) == 2
    plain, multiplied = worker0["multiplier_steps"]
    assert plain > 0 and multiplied == pytest.approx(10 * plain)
