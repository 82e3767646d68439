"""`tf.distribute` strategies by name, and fixes for multi-worker `fit`.

Keras 3 (up to at least 3.15) cannot run `model.fit` under
`tf.distribute.MultiWorkerMirroredStrategy`
(https://github.com/keras-team/keras/issues/20585):

1. `TensorFlowTrainer._maybe_symbolic_build` reduces the first distributed
   data batch with `strategy.reduce("MEAN", batch, axis=None)`, which the
   multi-worker strategy rejects for a nested batch ("Attempt to convert a
   value (PerReplica...) to a Tensor"). A local replica's batch is enough
   to build the model symbolically.
2. `reduce_per_replica(..., "mean")` reduces every metric with `axis=0`,
   which fails for scalar metrics ("Invalid reduction dimension 0 for input
   with 0 dimensions").

`apply_keras_multi_worker_fixes()` patches both, only for the affected
Keras versions (`MULTI_WORKER_FIX_KERAS_VERSIONS`).
"""

import json
import logging
import os

TF_CONFIG_ENV_VAR = "TF_CONFIG"
STRATEGY_NAMES = ("default", "mirrored", "multi-worker", "tpu")
KERAS_ISSUE_20585 = "https://github.com/keras-team/keras/issues/20585"
# [first, last] Keras versions known to need the multi-worker fixes.
MULTI_WORKER_FIX_KERAS_VERSIONS = ((3, 0, 0), (3, 15, 99))
CHIEF_TASK_TYPES = ("chief", "master")

logger = logging.getLogger(__name__)
_fixes_applied = False


def _version_tuple(version):
    numbers = []
    for part in version.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers + [0] * (3 - len(numbers)))


def keras_needs_multi_worker_fixes(keras_version=None):
    """Whether this Keras version needs the issue-20585 fixes.

    Args:
        keras_version: version string; `None` for the installed Keras.

    Returns:
        `True` for the Keras versions in `MULTI_WORKER_FIX_KERAS_VERSIONS`.

    Example:

    >>> keras_needs_multi_worker_fixes("3.15.1")
    True
    >>> keras_needs_multi_worker_fixes("2.15.0")
    False
    """
    if keras_version is None:
        import keras

        keras_version = keras.__version__
    first, last = MULTI_WORKER_FIX_KERAS_VERSIONS
    return first <= _version_tuple(keras_version) <= last


def _first_local_value(strategy, value):
    import tensorflow as tf

    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def _patched_maybe_symbolic_build(self, iterator=None, data_batch=None):
    import tensorflow as tf

    if self._distribute_strategy is None:
        return
    if iterator is not None:
        for _, _, distributed_iterator in iterator:
            batch = next(distributed_iterator)
            data_batch = tf.nest.map_structure(
                lambda value: _first_local_value(
                    self.distribute_strategy, value
                ),
                batch,
            )
            break
    with self.distribute_strategy.scope():
        self._symbolic_build(data_batch=data_batch)


def _make_patched_reduce_per_replica(original, trainer_module):
    def reduce_per_replica(values, strategy, reduction):
        multi_worker = trainer_module._collective_all_reduce_multi_worker(
            strategy
        )
        if not multi_worker or reduction not in ("auto", "mean"):
            return original(values, strategy, reduction)

        def reduce_mean(value):
            local = _first_local_value(strategy, value)
            axis = None if local.shape.rank == 0 else 0
            return strategy.reduce("MEAN", value, axis=axis)

        import tensorflow as tf

        return tf.nest.map_structure(reduce_mean, values)

    reduce_per_replica.keras_refinenet_fix = KERAS_ISSUE_20585
    return reduce_per_replica


def apply_keras_multi_worker_fixes(force=False):
    """Patches Keras's TensorFlow trainer for multi-worker `fit`.

    See the module docstring and keras-team/keras issue 20585. Safe to call
    several times; does nothing for unaffected Keras versions unless
    `force`.

    Args:
        force: apply the fixes whatever the Keras version.

    Returns:
        `True` if the fixes are (now) applied.

    Example:

    >>> apply_keras_multi_worker_fixes()  # doctest: +SKIP
    True
    """
    global _fixes_applied
    if _fixes_applied:
        return True
    if not force and not keras_needs_multi_worker_fixes():
        return False
    from keras.src.backend.tensorflow import trainer as trainer_module

    trainer_module.TensorFlowTrainer._maybe_symbolic_build = (
        _patched_maybe_symbolic_build
    )
    trainer_module.reduce_per_replica = _make_patched_reduce_per_replica(
        trainer_module.reduce_per_replica, trainer_module
    )
    _fixes_applied = True
    logger.info("Applied the Keras multi-worker fixes (%s).", KERAS_ISSUE_20585)
    return True


def read_tf_config():
    """The parsed `TF_CONFIG` environment variable, or `{}`."""
    raw = os.environ.get(TF_CONFIG_ENV_VAR, "")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"`{TF_CONFIG_ENV_VAR}` must be JSON ({error}). "
            f"Received: {TF_CONFIG_ENV_VAR}={raw!r}"
        ) from error


def is_chief(tf_config=None):
    """Whether this process is the chief of its cluster.

    The chief is the `chief` (or `master`) task, or worker 0 when the
    cluster has no chief; a process without `TF_CONFIG` is its own chief.

    Args:
        tf_config: parsed `TF_CONFIG`; `None` reads the environment.

    Returns:
        A bool.

    Example:

    >>> is_chief({"cluster": {"worker": ["a:1", "b:2"]},
    ...           "task": {"type": "worker", "index": 1}})
    False
    """
    if tf_config is None:
        tf_config = read_tf_config()
    task = tf_config.get("task") or {}
    task_type = task.get("type")
    if task_type is None:
        return True
    if task_type in CHIEF_TASK_TYPES:
        return True
    cluster = tf_config.get("cluster") or {}
    has_chief = any(name in cluster for name in CHIEF_TASK_TYPES)
    return task_type == "worker" and task.get("index", 0) == 0 and not has_chief


def task_label(tf_config=None):
    """`"worker_1"`-style name of this task, `"chief"` without TF_CONFIG."""
    if tf_config is None:
        tf_config = read_tf_config()
    task = tf_config.get("task") or {}
    if not task:
        return "chief"
    return f"{task.get('type')}_{task.get('index', 0)}"


def _local_devices():
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return [device.name for device in gpus]
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def get_strategy(name="default", tpu=None, devices=None):
    """A `tf.distribute.Strategy` from its command-line name.

    - `"default"`: the default (single-device) strategy.
    - `"mirrored"`: `MirroredStrategy` over `devices`, else all local GPUs,
      else all logical CPU devices (for testing).
    - `"multi-worker"`: `MultiWorkerMirroredStrategy` configured from
      `TF_CONFIG`; the Keras fixes of issue 20585 are applied. Create it
      at program start, before other TensorFlow work.
    - `"tpu"`: `TPUStrategy` on the TPU named by `tpu` (`None`/`"local"`
      for a TPU VM, a name or `grpc://` address otherwise): connects to the
      cluster and initializes the TPU system.

    Args:
        name: one of `STRATEGY_NAMES`.
        tpu: TPU name or address for `"tpu"`.
        devices: device names for `"mirrored"`.

    Returns:
        The strategy.

    Example:

    >>> get_strategy("default").num_replicas_in_sync
    1
    """
    if name not in STRATEGY_NAMES:
        raise ValueError(
            f"`name` must be one of {STRATEGY_NAMES}. Received: name={name!r}"
        )
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices or _local_devices())
    if name == "multi-worker":
        if not read_tf_config():
            logger.warning(
                "`%s` is not set: the multi-worker strategy runs as a "
                "single worker.",
                TF_CONFIG_ENV_VAR,
            )
        apply_keras_multi_worker_fixes()
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu or "local"
    )
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def replica_batch_sizes(strategy, global_batch_size):
    """`(per_replica, global)` batch sizes; the global one must divide.

    Args:
        strategy: a `tf.distribute.Strategy`.
        global_batch_size: examples per step over all replicas.

    Returns:
        `(per_replica_batch_size, global_batch_size)`.

    Example:

    >>> replica_batch_sizes(get_strategy("default"), 8)
    (8, 8)
    """
    replicas = strategy.num_replicas_in_sync
    if global_batch_size < 1 or global_batch_size % replicas:
        raise ValueError(
            f"`batch_size` (the global batch) must be a positive multiple of "
            f"the {replicas} replicas in sync. "
            f"Received: batch_size={global_batch_size}"
        )
    return global_batch_size // replicas, global_batch_size
