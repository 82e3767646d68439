"""`tf.distribute` strategies by name, and fixes for multi-worker `fit`.

Keras 3 (3.15 included) cannot run `model.fit` under
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

`keras_multi_worker_fixes(strategy)` is a context manager that patches
only the functions that still fail (`keras_issue_20585_symptoms` calls
them with a stand-in multi-worker strategy, without starting a cluster),
only for a multi-worker strategy, and restores the originals on exit.
"""

import contextlib
import json
import logging
import os

from keras_refinenet.backend_support import require_tensorflow_backend

TF_CONFIG_ENV_VAR = "TF_CONFIG"
STRATEGY_NAMES = ("default", "mirrored", "multi-worker", "tpu")
KERAS_ISSUE_20585 = "https://github.com/keras-team/keras/issues/20585"
SYMBOLIC_BUILD_SYMPTOM = "symbolic_build"
SCALAR_METRIC_SYMPTOM = "scalar_metric_reduce"
CHIEF_TASK_TYPES = ("chief", "master")

logger = logging.getLogger(__name__)


def _trainer_module():
    from keras.src.backend.tensorflow import trainer as trainer_module

    return trainer_module


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


_patched_maybe_symbolic_build.keras_refinenet_fix = KERAS_ISSUE_20585


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


def _probe_classes():
    """A stand-in multi-worker strategy and its distributed values.

    The strategy answers like `MultiWorkerMirroredStrategy` in a cluster
    (`_in_multi_worker_mode()` is true) and its `reduce` accepts what the
    real one accepts: one tensor or distributed value, and an `axis` that
    the value has.
    """
    import tensorflow as tf

    class ProbeValue(tf.distribute.DistributedValues):
        def __init__(self, value):
            self.values = (tf.convert_to_tensor(value),)

    class ProbeExtended:
        def _in_multi_worker_mode(self):
            return True

    class ProbeStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def __init__(self):  # no cluster, no collective ops
            self._probe_extended = ProbeExtended()

        @property
        def extended(self):
            return self._probe_extended

        def scope(self):
            return contextlib.nullcontext()

        def experimental_local_results(self, value):
            if isinstance(value, ProbeValue):
                return value.values
            return (value,)

        def reduce(self, reduce_op, value, axis=None):
            if isinstance(value, ProbeValue):
                value = value.values[0]
            tensor = tf.convert_to_tensor(value)
            if axis is not None and not 0 <= axis < tensor.shape.rank:
                raise ValueError(
                    f"Invalid reduction dimension {axis} for input with "
                    f"{tensor.shape.rank} dimensions"
                )
            return tf.reduce_mean(tensor, axis=axis)

    return ProbeStrategy, ProbeValue


def _symbolic_build_fails(trainer_module, strategy, value_cls):
    class ProbeTrainer:
        _distribute_strategy = strategy
        distribute_strategy = strategy

        def _symbolic_build(self, data_batch=None):
            self.data_batch = data_batch

    batch = (value_cls([[0.0, 0.0]]), value_cls([0]))
    try:
        trainer_module.TensorFlowTrainer._maybe_symbolic_build(
            ProbeTrainer(), iterator=[(0, 0, iter([batch]))]
        )
    except (TypeError, ValueError):
        return True
    return False


def _scalar_metric_reduce_fails(trainer_module, strategy, value_cls):
    try:
        trainer_module.reduce_per_replica(
            {"loss": value_cls(0.5)}, strategy, "auto"
        )
    except (TypeError, ValueError):
        return True
    return False


def keras_issue_20585_symptoms():
    """Which multi-worker `fit` failures of Keras issue 20585 still happen.

    Calls the two Keras functions at fault (see the module docstring) with
    a stand-in multi-worker strategy, as `fit` would call them in a
    cluster; nothing is trained and no cluster is started.

    Returns:
        A dict `{SYMBOLIC_BUILD_SYMPTOM: bool, SCALAR_METRIC_SYMPTOM: bool}`,
        `True` where the installed Keras still fails.

    Example:

    >>> sorted(keras_issue_20585_symptoms())
    ['scalar_metric_reduce', 'symbolic_build']
    """
    trainer_module = _trainer_module()
    strategy_cls, value_cls = _probe_classes()
    strategy = strategy_cls()
    return {
        SYMBOLIC_BUILD_SYMPTOM: _symbolic_build_fails(
            trainer_module, strategy, value_cls
        ),
        SCALAR_METRIC_SYMPTOM: _scalar_metric_reduce_fails(
            trainer_module, strategy, value_cls
        ),
    }


def is_multi_worker(strategy):
    """Whether `strategy` is a `MultiWorkerMirroredStrategy`.

    Example:

    >>> is_multi_worker(get_strategy("default"))
    False
    """
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


@contextlib.contextmanager
def keras_multi_worker_fixes(strategy):
    """Patches Keras's TensorFlow trainer for multi-worker `fit`, scoped.

    Inside the `with` block, and only for a multi-worker `strategy`, each
    Keras function that `keras_issue_20585_symptoms` finds still failing
    is replaced by a fixed one (see the module docstring); the originals
    are restored on exit, also after an error. Other strategies, and Keras
    versions that no longer fail, run unpatched.

    Args:
        strategy: the `tf.distribute.Strategy` of the training run.

    Yields:
        The tuple of patched symptom names (empty when nothing is patched).

    Example:

    >>> with keras_multi_worker_fixes(get_strategy("default")) as patched:
    ...     patched
    ()
    """
    if not is_multi_worker(strategy):
        yield ()
        return
    trainer_module = _trainer_module()
    trainer_cls = trainer_module.TensorFlowTrainer
    symptoms = keras_issue_20585_symptoms()
    restore = []
    if symptoms[SYMBOLIC_BUILD_SYMPTOM]:
        original_build = trainer_cls._maybe_symbolic_build
        trainer_cls._maybe_symbolic_build = _patched_maybe_symbolic_build
        restore.append(
            (
                SYMBOLIC_BUILD_SYMPTOM,
                trainer_cls,
                "_maybe_symbolic_build",
                original_build,
            )
        )
    if symptoms[SCALAR_METRIC_SYMPTOM]:
        original_reduce = trainer_module.reduce_per_replica
        trainer_module.reduce_per_replica = _make_patched_reduce_per_replica(
            original_reduce, trainer_module
        )
        restore.append(
            (
                SCALAR_METRIC_SYMPTOM,
                trainer_module,
                "reduce_per_replica",
                original_reduce,
            )
        )
    patched = tuple(symptom for symptom, *_ in restore)
    if patched:
        logger.info(
            "Patched Keras for multi-worker fit (%s): %s",
            KERAS_ISSUE_20585,
            ", ".join(patched),
        )
    try:
        yield patched
    finally:
        for _, owner, name, original in reversed(restore):
            setattr(owner, name, original)


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
      `TF_CONFIG`; run `fit` inside `keras_multi_worker_fixes(strategy)`.
      Create it at program start, before other TensorFlow work.
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
    if name != "default":
        require_tensorflow_backend("A tf.distribute strategy", f"name={name!r}")
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
