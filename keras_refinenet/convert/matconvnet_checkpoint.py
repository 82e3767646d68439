"""The authors' MatConvNet RefineNet checkpoints, read into plain data.

Two layouts (guosheng/refinenet):

- the released single file (`main/cnn_save_model.m`, MAT v7.3): one
  variable `net_config`, a handle object `ref_obj` whose `ref` struct holds
  `group_infos` (a cell of group structs), `net_input_img_scales` and
  bookkeeping. DAG groups keep a DagNN `saveobj` struct in `dag_net`
  (`vars`, `params` with `name`/`value`, `layers` with
  `name`/`type`/`inputs`/`outputs`/`params`/`block`); the loss group keeps
  its classifier as a plain conv layer (`filters`, `biases`) in
  `net_info.ref.layers` (`main/gen_network_loss_group.m`);
- the legacy folder (code before 23 Dec 2016, `main/my_load_legacy_model.m`):
  `net-config*.mat` with a plain struct `saved_net_config`, and one
  `group_<name>_<idx>.mat` per DAG group saved with `-struct` (top-level
  `vars`, `params`, `layers`, `meta`).

The ResNet group is the DAG with one input (`featnet_1`, legacy
`inputpath_1`), the decoder the DAG with several (`refinenets`, legacy
`multipath_fusion`). The decoder's architecture is derived from its layer
graph, not from names: the adaptation convolution and residual conv units
(RCU: ReLU, conv with bias, ReLU, conv, `dagnn.Sum` with the unit's input)
of every input path, then per RefineNet block the fusion (one conv per
input into a `My_sum_layer`), the chained residual pooling (a ReLU, then
per stage either pool -> conv, "original", or conv -> pool, "improved",
all stage outputs summed with the ReLU's output) and the output RCUs.
`check_architecture` then regenerates the parameter names and shapes the
authors' generator (`main/gen_network_refine_group.m`,
`main/gen_network_pool_block.m`, `main/My_net_util.m`) gives that
architecture and lists every difference.

Arrays stay in MATLAB order (filters H x W x In x Out, biases 1 x K,
BatchNorm moments C x 2 = [mean, sigma]), float32.
"""

import collections
import dataclasses
import glob
import os
import re

import numpy as np

from keras_refinenet.convert.matlab_file import (
    MatlabFileError,
    MatlabObject,
    StructArray,
    UnsupportedValue,
    load_mat_file,
)

NET_CONFIG_VARIABLE = "net_config"
LEGACY_NET_CONFIG_VARIABLE = "saved_net_config"
LEGACY_NET_CONFIG_PATTERN = "net-config*.mat"
LEGACY_GROUP_FILE = "group_{name}_{index}.mat"
REF_PROPERTY = "ref"
INPUT_SCALES_FIELD = "net_input_img_scales"
LOSS_GROUP_NAME = "loss_group"
DAG_FIELDS = ("vars", "params", "layers")

CONV = "dagnn.Conv"
BATCH_NORM = "dagnn.BatchNorm"
RELU = "dagnn.ReLU"
POOLING = "dagnn.Pooling"
SUM = "dagnn.Sum"
FUSION_SUM = "My_sum_layer"
DROPOUT = "dagnn.DropOut"
COPY = "My_copy_layer"
BACKBONE_LAYER_TYPES = (CONV, BATCH_NORM, RELU, POOLING, SUM, DROPOUT, COPY)
DECODER_LAYER_TYPES = (CONV, RELU, POOLING, SUM, FUSION_SUM)
CLASSIFIER_LAYER_TYPE = "conv"
DROPOUT_LAYER_TYPE = "dropout"

ORIGINAL_POOLING = "original"
IMPROVED_POOLING = "improved"
LEGACY_ADAPT_PREFIX = "adapt_stage"
CURRENT_ADAPT_PREFIX = "adapt_input_path"
ADAPT_PREFIXES = (LEGACY_ADAPT_PREFIX, CURRENT_ADAPT_PREFIX)
FILTER_SUFFIX = "_filter"
BIAS_SUFFIX = "_bias"
MAX_LISTED_DIFFERENCES = 10
BATCH_NORM_PARAMS = 3
POOL_SIZE_FACT = "pool_size"
PER_BLOCK_FACTS = (
    "pooling_order",
    "pool_stages",
    POOL_SIZE_FACT,
    "output_rcus",
)
UNIFORM_BLOCK_FACTS = ("pooling_order", "pool_stages", POOL_SIZE_FACT)
TORCH_SUFFIXES = (".pth", ".pt")
EPSILON_SETTING = "epsilon"
LISTED_SETTINGS = (
    "size",
    "pad",
    "stride",
    "poolSize",
    "method",
    "hasBias",
    EPSILON_SETTING,
)


class MatconvnetCheckpointError(MatlabFileError):
    """Raised for a MatConvNet checkpoint that is unreadable or mismatching."""


# === Data ===


@dataclasses.dataclass(frozen=True)
class DagLayer:
    """One DagNN layer as saved by `dagnn.DagNN.saveobj`.

    Args:
        name: layer name.
        type: block class, e.g. `dagnn.Conv`, `My_sum_layer`.
        inputs: input variable names.
        outputs: output variable names.
        params: parameter names.
        block: the block's saved settings (`size`, `pad`, `stride`,
            `hasBias`, `poolSize`, `method`, `epsilon`, ...).
    """

    name: str
    type: str
    inputs: tuple
    outputs: tuple
    params: tuple
    block: dict

    def number(self, key):
        """A scalar block setting (e.g. BatchNorm `epsilon`) or `None`."""
        value = self.block.get(key)
        if value is None or isinstance(value, str):
            return None
        array = np.asarray(value, dtype=float).reshape(-1)
        return float(array[0]) if array.size else None

    def setting(self, key):
        """A numeric block setting as a flat int tuple (or `None`)."""
        value = self.block.get(key)
        if value is None or isinstance(value, str):
            return value
        array = np.asarray(value).reshape(-1)
        if array.dtype.kind == "b":
            return tuple(bool(v) for v in array)
        return tuple(int(round(float(v))) for v in array)


@dataclasses.dataclass
class DagNetwork:
    """A DagNN group: its layers in file order and its parameters.

    Args:
        group_name: the group's `name` (e.g. `featnet_1`, `refinenets`).
        layers: tuple of `DagLayer`.
        params: parameter name -> float32 array in MATLAB order.
    """

    group_name: str
    layers: tuple
    params: dict

    def producers(self):
        """Variable name -> the layer writing it."""
        return {out: layer for layer in self.layers for out in layer.outputs}

    def consumers(self):
        """Variable name -> layers reading it, in file order."""
        table = collections.defaultdict(list)
        for layer in self.layers:
            for name in layer.inputs:
                table[name].append(layer)
        return table

    def input_vars(self):
        """Variables read but never written, in order of first use."""
        produced = set(self.producers())
        names = [n for layer in self.layers for n in layer.inputs]
        return tuple(dict.fromkeys(n for n in names if n not in produced))

    def output_vars(self):
        """Variables written but never read, in order."""
        consumed = {n for layer in self.layers for n in layer.inputs}
        names = [n for layer in self.layers for n in layer.outputs]
        return tuple(n for n in dict.fromkeys(names) if n not in consumed)


@dataclasses.dataclass(frozen=True)
class Classifier:
    """The loss group's conv classifier.

    Args:
        filters: H x W x In x K float32.
        biases: K float32 (flattened from MATLAB's 1 x K).
        pad: MATLAB pad (top, bottom, left, right) or one value.
        stride: stride.
        dropout_rate: rate of the dropout layer before it, or `None`.
    """

    filters: np.ndarray
    biases: np.ndarray
    pad: tuple
    stride: tuple
    dropout_rate: float


@dataclasses.dataclass(frozen=True)
class RefineBlock:
    """One RefineNet block as found in the decoder DAG.

    Args:
        index: 1-based position in the cascade.
        inputs: what it fuses: `"path{p}"` or `"block{g}"` per input.
        width: channels after the fusion (of the CRP and output RCUs).
        pooling_order: `"original"` (pool then conv), `"improved"` (conv
            then pool) or `None` without chained pooling.
        pool_stages: number of chained-pooling stages.
        pool_size: pooling window (height, width).
        pool_stride: pooling stride as saved.
        pool_pad: pooling padding as saved.
        output_rcus: number of RCUs after the pooling.
        kernel_sizes: the set of conv kernel sizes used in the block.
    """

    index: int
    inputs: tuple
    width: int
    pooling_order: str
    pool_stages: int
    pool_size: tuple
    pool_stride: tuple
    pool_pad: tuple
    output_rcus: int
    kernel_sizes: tuple


@dataclasses.dataclass(frozen=True)
class DecoderArchitecture:
    """The decoder as derived from its DAG.

    Args:
        naming_scheme: `"adapt_stage"` (legacy), `"adapt_input_path"`
            (current generator) or `"unknown"`.
        path_inputs: decoder input variables, path 1 (deepest) first.
        path_input_channels: channels of each input.
        path_widths: channels after each path's adaptation conv.
        adapt_rcus: RCUs per path.
        blocks: tuple of `RefineBlock`, in cascade order.
        output_var: the decoder's output variable.
    """

    naming_scheme: str
    path_inputs: tuple
    path_input_channels: tuple
    path_widths: tuple
    adapt_rcus: tuple
    blocks: tuple
    output_var: str

    @property
    def num_paths(self):
        return len(self.path_inputs)


@dataclasses.dataclass(frozen=True)
class BackboneArchitecture:
    """The ResNet as derived from its DAG.

    Args:
        input_var: the image variable.
        stage_blocks: residual blocks per stage (a stage starts at each
            block with a projection shortcut).
        depth: 2 + 3 x blocks for bottleneck ResNets, else `None`.
        output_vars: variables handed to the decoder.
    """

    input_var: str
    stage_blocks: tuple
    depth: int
    output_vars: tuple


@dataclasses.dataclass
class MatconvnetCheckpoint:
    """Everything the converter needs from one MatConvNet checkpoint.

    Args:
        path: the file or folder read.
        layout: `"single_file"` or `"legacy_folder"`.
        group_names: every group's name, in order.
        backbone: the ResNet `DagNetwork` (the first one: a multi-scale
            net has one per scale, all in `dags`).
        decoder: the RefineNet decoder `DagNetwork`.
        classifier: the `Classifier`.
        input_scales: `net_input_img_scales` as floats (empty if absent).
        num_classes: K, the classifier's outputs (void included).
        architecture: the decoder's `DecoderArchitecture`.
        backbone_architecture: the `BackboneArchitecture`.
        dags: every DagNN group found, in order.
        problems: why fields are `None` (only with `strict=False`).
    """

    path: str
    layout: str
    group_names: tuple
    backbone: DagNetwork
    decoder: DagNetwork
    classifier: Classifier
    input_scales: tuple
    num_classes: int
    architecture: DecoderArchitecture
    backbone_architecture: BackboneArchitecture
    dags: tuple = ()
    problems: tuple = ()


# === Reading ===


def _fail(message, path):
    return MatconvnetCheckpointError(f"{message} Received: path={path!r}")


def _elements(value):
    """A struct array / cell / single value as a flat list (MATLAB order)."""
    if isinstance(value, StructArray):
        return list(value.elements)
    if isinstance(value, dict):
        return [value]
    if isinstance(value, np.ndarray) and value.dtype == object:
        return list(value.reshape(-1, order="F"))
    if value is None:
        return []
    return [value]


def _strings(value, where, path):
    """A cell of strings (Nx1 or 1xN) or one string as a tuple of str."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, np.ndarray) and value.size == 0:
        return ()
    items = _elements(value)
    if not all(isinstance(item, str) for item in items):
        raise _fail(f"{where} is not a cell of strings.", path)
    return tuple(items)


def _unwrap_ref(value):
    """`ref_obj` (or a plain struct saved in its place) -> its `ref`."""
    if isinstance(value, MatlabObject):
        return value.properties.get(REF_PROPERTY)
    if isinstance(value, dict) and set(value) == {REF_PROPERTY}:
        return value[REF_PROPERTY]
    return value


def parse_dagnn(struct, group_name, path=""):
    """A DagNN `saveobj` struct (as `load_mat_file` returns it) -> data.

    Args:
        struct: dict with `vars`, `params` and `layers` (and `meta`).
        group_name: the group it belongs to (for names and errors).
        path: the file, for error messages.

    Returns:
        A `DagNetwork`.

    Raises:
        MatconvnetCheckpointError: the struct is not a DagNN saveobj.

    Example:

    >>> struct = {"vars": {}, "params": {"name": "w", "value": 1.0},
    ...           "layers": {"name": "c", "type": "dagnn.Conv",
    ...                      "inputs": "x", "outputs": "y", "params": "w",
    ...                      "block": {"pad": 1.0}}}
    >>> dag = parse_dagnn(struct, "g")
    >>> dag.layers[0].inputs, dag.layers[0].setting("pad"), dag.input_vars()
    (('x',), (1,), ('x',))
    """
    where = f"group {group_name!r} dag_net"
    if not isinstance(struct, dict) or not all(
        field in struct for field in DAG_FIELDS
    ):
        raise _fail(
            f"{where} is not a DagNN saveobj struct with fields {DAG_FIELDS}.",
            path,
        )
    params = {}
    for index, param in enumerate(_elements(struct["params"])):
        name = param.get("name") if isinstance(param, dict) else None
        if not isinstance(name, str):
            raise _fail(f"{where}.params({index + 1}) has no name.", path)
        value = np.asarray(param.get("value"))
        if value.dtype.kind not in "biuf":
            raise _fail(f"{where} param {name!r} is not numeric.", path)
        if name in params:
            raise _fail(f"{where} param {name!r} appears twice.", path)
        params[name] = value.astype(np.float32)
    layers = []
    for index, layer in enumerate(_elements(struct["layers"])):
        layer_where = f"{where}.layers({index + 1})"
        if not isinstance(layer, dict) or not isinstance(
            layer.get("name"), str
        ):
            raise _fail(f"{layer_where} has no name.", path)
        block = layer.get("block")
        layers.append(
            DagLayer(
                name=layer["name"],
                type=str(layer.get("type", "")),
                inputs=_strings(layer.get("inputs"), layer_where, path),
                outputs=_strings(layer.get("outputs"), layer_where, path),
                params=_strings(layer.get("params"), layer_where, path),
                block=block if isinstance(block, dict) else {},
            )
        )
    return DagNetwork(group_name, tuple(layers), params)


def _is_dagnn(value):
    return isinstance(value, dict) and all(f in value for f in DAG_FIELDS)


def _group_name(group, index):
    name = group.get("name") if isinstance(group, dict) else None
    return name if isinstance(name, str) else f"group{index + 1}"


def _classifier(group, path):
    net_info = _unwrap_ref(group.get("net_info"))
    if isinstance(net_info, UnsupportedValue):
        raise _fail(
            f"The loss group's net_info could not be decoded "
            f"({net_info.reason}); re-save it with MATLAB as -v7.3.",
            path,
        )
    layers = (
        _elements(net_info.get("layers")) if isinstance(net_info, dict) else []
    )
    dropout_rate = None
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        kind = layer.get("type")
        if kind == DROPOUT_LAYER_TYPE:
            rate = np.asarray(layer.get("rate", np.nan), float).reshape(-1)
            dropout_rate = float(rate[0]) if rate.size else None
        if kind != CLASSIFIER_LAYER_TYPE:
            continue
        filters, biases = layer.get("filters"), layer.get("biases")
        if filters is None and "weights" in layer:
            weights = _elements(layer["weights"])
            filters, biases = (weights + [None, None])[:2]
        if filters is None or biases is None:
            raise _fail("The loss group's conv layer has no filters.", path)
        filters = np.asarray(filters, np.float32)
        if filters.ndim == 3:
            filters = filters[..., np.newaxis]
        setting = DagLayer("", "", (), (), (), layer).setting
        return Classifier(
            filters=filters,
            biases=np.asarray(biases, np.float32).reshape(-1),
            pad=setting("pad") or (0,),
            stride=setting("stride") or (1,),
            dropout_rate=dropout_rate,
        )
    raise _fail("No conv classifier layer in the loss group.", path)


def _groups_from_config(ref, path):
    if not isinstance(ref, dict) or "group_infos" not in ref:
        raise _fail("The net config has no 'group_infos'.", path)
    groups = [g for g in _elements(ref["group_infos"]) if isinstance(g, dict)]
    if not groups:
        raise _fail("'group_infos' holds no groups.", path)
    return groups


def _split_dags(dags, names, path):
    if len(dags) < 2:
        raise _fail(
            f"Expected two DagNN groups (ResNet and decoder), found "
            f"{len(dags)} in groups {names}.",
            path,
        )
    by_inputs = sorted(dags, key=lambda dag: len(dag.input_vars()))
    backbone, decoder = by_inputs[0], by_inputs[-1]
    if len(backbone.input_vars()) != 1 or len(decoder.input_vars()) < 2:
        raise _fail(
            "Cannot tell the ResNet (one input) from the decoder (several "
            f"inputs) among groups {[d.group_name for d in dags]}.",
            path,
        )
    return backbone, decoder


def _assemble(path, layout, ref, groups, dags, strict):
    names = tuple(_group_name(group, i) for i, group in enumerate(groups))
    problems = []

    def attempt(function, *args):
        try:
            return function(*args)
        except MatconvnetCheckpointError as error:
            if strict:
                raise
            problems.append(str(error))
            return None

    backbone, decoder = attempt(_split_dags, dags, names, path) or (None, None)
    loss_groups = [g for g in groups if g.get("name") == LOSS_GROUP_NAME]
    loss_group = loss_groups[0] if loss_groups else groups[-1]
    classifier = attempt(_classifier, loss_group, path)
    scales = ref.get(INPUT_SCALES_FIELD) if isinstance(ref, dict) else None
    input_scales = (
        tuple(float(v) for v in np.asarray(scales, float).reshape(-1))
        if scales is not None
        else ()
    )
    return MatconvnetCheckpoint(
        path=path,
        layout=layout,
        group_names=names,
        backbone=backbone,
        decoder=decoder,
        classifier=classifier,
        input_scales=input_scales,
        num_classes=(int(classifier.filters.shape[3]) if classifier else None),
        architecture=(
            attempt(derive_decoder_architecture, decoder, path)
            if decoder
            else None
        ),
        backbone_architecture=(
            attempt(derive_backbone_architecture, backbone, path)
            if backbone
            else None
        ),
        dags=tuple(dags),
        problems=tuple(problems),
    )


def _load_single_file(path, strict):
    contents = load_mat_file(path, variables=[NET_CONFIG_VARIABLE])
    ref = _unwrap_ref(contents[NET_CONFIG_VARIABLE])
    groups = _groups_from_config(ref, path)
    dags = []
    for index, group in enumerate(groups):
        if _is_dagnn(group.get("dag_net")):
            name = _group_name(group, index)
            dags.append(parse_dagnn(group["dag_net"], name, path))
    return _assemble(path, "single_file", ref, groups, dags, strict)


def _load_legacy_folder(path, strict):
    configs = sorted(glob.glob(os.path.join(path, LEGACY_NET_CONFIG_PATTERN)))
    if not configs:
        raise _fail(
            f"No {LEGACY_NET_CONFIG_PATTERN} in the legacy model folder.", path
        )
    contents = load_mat_file(configs[0])
    config = contents.get(LEGACY_NET_CONFIG_VARIABLE)
    if config is None:
        config = contents.get(NET_CONFIG_VARIABLE)
    ref = _unwrap_ref(config)
    if (
        isinstance(ref, dict)
        and "group_infos" not in ref
        and REF_PROPERTY in ref
    ):
        ref = ref[REF_PROPERTY]
    groups = _groups_from_config(ref, configs[0])
    dags = []
    for index, group in enumerate(groups):
        name = _group_name(group, index)
        group_index = group.get("group_idx", index + 1)
        group_index = int(np.asarray(group_index, float).reshape(-1)[0])
        file = os.path.join(
            path, LEGACY_GROUP_FILE.format(name=name, index=group_index)
        )
        if _is_dagnn(group.get("dag_net")):
            dags.append(parse_dagnn(group["dag_net"], name, configs[0]))
        elif os.path.isfile(file):
            dags.append(parse_dagnn(load_mat_file(file), name, file))
    return _assemble(path, "legacy_folder", ref, groups, dags, strict)


def load_matconvnet_checkpoint(path, strict=True):
    """Reads an authors' MatConvNet RefineNet checkpoint (file or folder).

    Args:
        path: the released `.mat` file (`refinenet_res101_cityscapes.mat`,
            ...) or a legacy folder with `net-config*.mat` and
            `group_<name>_<idx>.mat` files.
        strict: raise when the ResNet, decoder, classifier or
            architecture cannot be found; with `False` those fields are
            `None` and the reasons are in `problems` (for inspection).

    Returns:
        A `MatconvnetCheckpoint`.

    Raises:
        MatconvnetCheckpointError: the file is not such a checkpoint, or
            its decoder graph is not a RefineNet cascade.
        MatlabFileError: the file itself is malformed.

    Example:

    >>> path = "refinenet_res101_cityscapes.mat"
    >>> ckpt = load_matconvnet_checkpoint(path)  # doctest: +SKIP
    >>> ckpt.num_classes, ckpt.input_scales  # doctest: +SKIP
    (20, (1.2,))
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return _load_legacy_folder(path, strict)
    if not os.path.isfile(path):
        raise _fail("No checkpoint file or folder there.", path)
    return _load_single_file(path, strict)


# === Deriving the architecture ===


class _Graph:
    def __init__(self, dag, path):
        self.dag = dag
        self.path = path
        self.consumers = dag.consumers()

    def fail(self, message):
        return _fail(
            f"Decoder DAG of group {self.dag.group_name!r}: {message}",
            self.path,
        )

    def users(self, var, kinds):
        return [
            layer
            for layer in self.consumers.get(var, ())
            if layer.type in kinds
        ]

    def single(self, var, kinds):
        found = self.users(var, kinds)
        return found[0] if len(found) == 1 else None

    def conv_channels(self, conv):
        size = conv.setting("size")
        if size and len(size) == 4:
            return size[2], size[3]
        filters = self.dag.params.get(conv.params[0]) if conv.params else None
        if filters is None:
            raise self.fail(f"conv {conv.name!r} has neither size nor filter.")
        shape = tuple(filters.shape) + (1,) * (4 - filters.ndim)
        return shape[2], shape[3]

    def kernel(self, conv):
        size = conv.setting("size")
        if size:
            return tuple(size[:2])
        filters = self.dag.params[conv.params[0]]
        return tuple(filters.shape[:2])

    def match_rcu(self, var):
        for relu in self.users(var, (RELU,)):
            conv1 = self.single(relu.outputs[0], (CONV,))
            if conv1 is None:
                continue
            relu2 = self.single(conv1.outputs[0], (RELU,))
            if relu2 is None:
                continue
            conv2 = self.single(relu2.outputs[0], (CONV,))
            if conv2 is None:
                continue
            total = self.single(conv2.outputs[0], (SUM, FUSION_SUM))
            if total is None or set(total.inputs) != {var, conv2.outputs[0]}:
                continue
            return total, (self.kernel(conv1), self.kernel(conv2))
        return None, ()

    def rcu_chain(self, var):
        count, kernels = 0, set()
        while True:
            total, found = self.match_rcu(var)
            if total is None:
                return count, var, kernels
            count += 1
            kernels.update(found)
            var = total.outputs[0]

    def chained_pooling(self, var):
        relu = self.single(var, (RELU,))
        if relu is None:
            return None
        start = relu.outputs[0]
        current, outputs, orders, sizes, kernels = (
            start,
            [],
            set(),
            set(),
            set(),
        )
        while True:
            steps = self.users(current, (CONV, POOLING))
            if not steps:
                break
            if len(steps) > 1:
                raise self.fail(
                    f"variable {current!r} feeds {len(steps)} layers."
                )
            step = steps[0]
            if step.type == POOLING:
                pool = step
                conv = self.single(pool.outputs[0], (CONV,))
                if conv is None:
                    raise self.fail(
                        f"pooling {pool.name!r} is not followed by a conv."
                    )
                orders.add(ORIGINAL_POOLING)
                current = conv.outputs[0]
            else:
                conv = step
                pool = self.single(conv.outputs[0], (POOLING,))
                if pool is None:
                    return None
                orders.add(IMPROVED_POOLING)
                current = pool.outputs[0]
            sizes.add(
                (
                    pool.setting("poolSize"),
                    pool.setting("stride"),
                    pool.setting("pad"),
                )
            )
            kernels.add(self.kernel(conv))
            outputs.append(current)
        if not outputs:
            return None
        if len(orders) > 1:
            raise self.fail(
                "a chained pooling mixes pool->conv and conv->pool stages."
            )
        total = None
        for layer in self.users(start, (FUSION_SUM, SUM)):
            if set(layer.inputs) == {start, *outputs}:
                total = layer
        if total is None:
            raise self.fail(
                f"no sum of {start!r} and the {len(outputs)} pooling stages."
            )
        if len(sizes) > 1:
            raise self.fail(f"pool settings {list(sizes)} differ in a block.")
        return (
            total.outputs[0],
            orders.pop(),
            len(outputs),
            sizes.pop(),
            kernels,
        )


def _naming_scheme(dag):
    found = set()
    for name in dag.params:
        for prefix in ADAPT_PREFIXES:
            if re.match(rf"{prefix}\d+_", name):
                found.add(prefix)
    return found.pop() if len(found) == 1 else "unknown"


def derive_decoder_architecture(dag, path=""):
    """Derives the RefineNet cascade from a decoder DAG's graph.

    Args:
        dag: the decoder `DagNetwork`.
        path: the file, for error messages.

    Returns:
        A `DecoderArchitecture`.

    Raises:
        MatconvnetCheckpointError: the graph is not a RefineNet cascade.
    """
    graph = _Graph(dag, path)
    inputs = dag.input_vars()
    channels, widths, adapt_rcus, ends = [], [], [], {}
    for index, var in enumerate(inputs, start=1):
        conv = graph.single(var, (CONV,))
        if conv is None:
            raise graph.fail(f"input {var!r} is not read by one conv.")
        in_channels, width = graph.conv_channels(conv)
        count, end, _ = graph.rcu_chain(conv.outputs[0])
        channels.append(in_channels)
        widths.append(width)
        adapt_rcus.append(count)
        ends[end] = f"path{index}"
    if not ends:
        raise graph.fail("no input paths.")
    current = next(iter(ends))
    sources = dict(ends)
    width_of = {f"path{i}": w for i, w in enumerate(widths, start=1)}
    producers = dag.producers()
    used = {current}
    blocks = []
    while True:
        index = len(blocks) + 1
        fusion_convs = graph.users(current, (CONV,))
        kernels = set()
        if fusion_convs:
            fusion = graph.single(fusion_convs[0].outputs[0], (FUSION_SUM, SUM))
            if fusion is None:
                raise graph.fail(f"conv after {current!r} feeds no fusion sum.")
            block_inputs, width = [], None
            for fused in fusion.inputs:
                conv = producers.get(fused)
                if (
                    conv is None
                    or conv.type != CONV
                    or conv.inputs[0] not in sources
                ):
                    raise graph.fail(
                        f"fusion {fusion.name!r} input {fused!r} is not a "
                        "conv of a path or block output."
                    )
                block_inputs.append(sources[conv.inputs[0]])
                used.add(conv.inputs[0])
                width = graph.conv_channels(conv)[1]
                kernels.add(graph.kernel(conv))
            after = fusion.outputs[0]
        else:
            block_inputs = [sources[current]]
            width = width_of[sources[current]]
            after = current
        pooled = graph.chained_pooling(after)
        if pooled is None:
            order, stages, crp_out = None, 0, after
            pool_size = pool_stride = pool_pad = None
        else:
            crp_out, order, stages, settings, crp_kernels = pooled
            pool_size, pool_stride, pool_pad = settings
            kernels |= crp_kernels
        count, end, rcu_kernels = graph.rcu_chain(crp_out)
        kernels |= rcu_kernels
        blocks.append(
            RefineBlock(
                index=index,
                inputs=tuple(block_inputs),
                width=int(width),
                pooling_order=order,
                pool_stages=stages,
                pool_size=pool_size,
                pool_stride=pool_stride,
                pool_pad=pool_pad,
                output_rcus=count,
                kernel_sizes=tuple(sorted(kernels)),
            )
        )
        sources[end] = f"block{index}"
        width_of[f"block{index}"] = int(width)
        if not graph.users(end, (CONV, RELU)):
            output_var = end
            break
        if end == current or len(blocks) > len(inputs):
            raise graph.fail(
                f"the cascade does not end after {len(blocks)} blocks."
            )
        current = end
    unused = [name for var, name in ends.items() if var not in used]
    if unused:
        raise graph.fail(f"paths {unused} are never fused.")
    return DecoderArchitecture(
        naming_scheme=_naming_scheme(dag),
        path_inputs=tuple(inputs),
        path_input_channels=tuple(int(c) for c in channels),
        path_widths=tuple(int(w) for w in widths),
        adapt_rcus=tuple(adapt_rcus),
        blocks=tuple(blocks),
        output_var=output_var,
    )


@dataclasses.dataclass(frozen=True)
class DecoderConvRoles:
    """The decoder's conv layers by role, found by walking its graph.

    Args:
        projections: per path (path 1 first), the conv reading its input.
        adaptive_units: per path, `(conv_with_bias, conv)` per RCU.
        fusion: per block, `(source, conv)` per fused input in the fusion
            sum's input order (`source` is `"path{p}"` or `"block{g}"`);
            empty for a one-input block.
        pooling: per block, the chained-pooling convs, stage 1 first.
        output_units: per block, `(conv_with_bias, conv)` per RCU.
    """

    projections: tuple
    adaptive_units: tuple
    fusion: tuple
    pooling: tuple
    output_units: tuple


def _rcu_convs(graph, var, producers):
    units = []
    while True:
        total, _ = graph.match_rcu(var)
        if total is None:
            return tuple(units), var
        conv2 = producers[next(name for name in total.inputs if name != var)]
        relu2 = producers[conv2.inputs[0]]
        units.append((producers[relu2.inputs[0]], conv2))
        var = total.outputs[0]


def _pooling_convs(graph, var):
    relu = graph.single(var, (RELU,))
    if relu is None:
        return (), var
    current, convs = relu.outputs[0], []
    while True:
        steps = graph.users(current, (CONV, POOLING))
        if len(steps) != 1:
            break
        step = steps[0]
        if step.type == POOLING:
            conv = graph.single(step.outputs[0], (CONV,))
            current = conv.outputs[0]
        else:
            conv = step
            current = graph.single(conv.outputs[0], (POOLING,)).outputs[0]
        convs.append(conv)
    if not convs:
        return (), var
    total = next(
        layer
        for layer in graph.users(relu.outputs[0], (FUSION_SUM, SUM))
        if len(layer.inputs) == len(convs) + 1
    )
    return tuple(convs), total.outputs[0]


def decoder_conv_roles(dag, path=""):
    """Finds every decoder conv's role by walking the decoder graph.

    The walk follows the same structure as `derive_decoder_architecture`
    (input projection, RCU chains, fusion convs into a sum, the chained
    pooling, output RCUs), so a converter maps parameters by their place
    in the graph, not by their names.

    Args:
        dag: the decoder `DagNetwork`.
        path: the file, for error messages.

    Returns:
        A `DecoderConvRoles`.

    Raises:
        MatconvnetCheckpointError: the graph is not a RefineNet cascade.
    """
    architecture = derive_decoder_architecture(dag, path)
    graph = _Graph(dag, path)
    producers = dag.producers()
    projections, adaptive, sources = [], [], {}
    for index, var in enumerate(architecture.path_inputs, start=1):
        conv = graph.single(var, (CONV,))
        units, end = _rcu_convs(graph, conv.outputs[0], producers)
        projections.append(conv)
        adaptive.append(units)
        sources[end] = f"path{index}"
    fusion, pooling, output = [], [], []
    current = next(iter(sources))
    for block in architecture.blocks:
        if len(block.inputs) > 1:
            fusion_convs = graph.users(current, (CONV,))
            total = graph.single(fusion_convs[0].outputs[0], (FUSION_SUM, SUM))
            convs = [producers[name] for name in total.inputs]
            fusion.append(
                tuple((sources[conv.inputs[0]], conv) for conv in convs)
            )
            after = total.outputs[0]
        else:
            fusion.append(())
            after = current
        convs, after = _pooling_convs(graph, after)
        pooling.append(convs)
        units, end = _rcu_convs(graph, after, producers)
        output.append(units)
        sources[end] = f"block{block.index}"
        current = end
    return DecoderConvRoles(
        projections=tuple(projections),
        adaptive_units=tuple(adaptive),
        fusion=tuple(fusion),
        pooling=tuple(pooling),
        output_units=tuple(output),
    )


def derive_backbone_architecture(dag, path=""):
    """Derives the ResNet's stages from a backbone DAG's graph.

    Args:
        dag: the ResNet `DagNetwork`.
        path: the file, for error messages.

    Returns:
        A `BackboneArchitecture`.
    """
    producers = dag.producers()
    stage_blocks = []
    for layer in dag.layers:
        if layer.type != SUM:
            continue
        sources = [producers.get(var) for var in layer.inputs]
        projection = all(
            source is not None and source.type in (CONV, BATCH_NORM)
            for source in sources
        )
        if projection or not stage_blocks:
            stage_blocks.append(0)
        stage_blocks[-1] += 1
    blocks = sum(stage_blocks)
    convs = sum(layer.type == CONV for layer in dag.layers)
    projections = len(stage_blocks)
    bottleneck = blocks and convs == 1 + 3 * blocks + projections
    inputs = dag.input_vars()
    if len(inputs) != 1:
        raise _fail(f"ResNet DAG has inputs {inputs}, expected one.", path)
    return BackboneArchitecture(
        input_var=inputs[0],
        stage_blocks=tuple(stage_blocks),
        depth=2 + 3 * blocks if bottleneck else None,
        output_vars=dag.output_vars(),
    )


# === Checking ===


def _matlab_shape(shape):
    shape = tuple(int(s) for s in shape)
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _conv_params(name, in_channels, out_channels, kernel, bias):
    shapes = {f"{name}{FILTER_SUFFIX}": (*kernel, in_channels, out_channels)}
    if bias:
        shapes[f"{name}{BIAS_SUFFIX}"] = (1, out_channels)
    return shapes


def _rcu_params(prefix, count, width, kernel):
    shapes = {}
    for unit in range(1, count + 1):
        shapes.update(
            _conv_params(f"{prefix}_b{unit}_conv", width, width, kernel, True)
        )
        shapes.update(
            _conv_params(
                f"{prefix}_b{unit}_conv_relu_varout_dimred",
                width,
                width,
                kernel,
                False,
            )
        )
    return shapes


def expected_decoder_params(architecture, kernel=(3, 3)):
    """The decoder parameter names and MATLAB shapes the authors' generator
    writes for `architecture` (`main/gen_network_refine_group.m`).

    Args:
        architecture: a `DecoderArchitecture` (its naming scheme decides
            `adapt_stage{p}` or `adapt_input_path{p}`).
        kernel: the conv kernel size.

    Returns:
        A dict from parameter name to MATLAB shape.
    """
    prefix = (
        architecture.naming_scheme
        if architecture.naming_scheme in ADAPT_PREFIXES
        else CURRENT_ADAPT_PREFIX
    )
    shapes = {}
    end_vars, widths = {}, {}
    for path, (var, channels, width, rcus) in enumerate(
        zip(
            architecture.path_inputs,
            architecture.path_input_channels,
            architecture.path_widths,
            architecture.adapt_rcus,
            strict=True,
        ),
        start=1,
    ):
        shapes.update(
            _conv_params(f"{var}_dimred", channels, width, kernel, False)
        )
        shapes.update(_rcu_params(f"{prefix}{path}", rcus, width, kernel))
        end_vars[f"path{path}"] = f"{prefix}{path}_b{rcus}_joint_varout"
        widths[f"path{path}"] = width
    for block in architecture.blocks:
        name = f"mflow_conv_g{block.index}"
        if len(block.inputs) > 1:
            for source in block.inputs:
                shapes.update(
                    _conv_params(
                        f"{end_vars[source]}_dimred",
                        widths[source],
                        block.width,
                        kernel,
                        False,
                    )
                )
        for stage in range(1, block.pool_stages + 1):
            if block.pooling_order == IMPROVED_POOLING:
                source = (
                    f"{name}_poolprev_relu_varout"
                    if stage == 1
                    else f"{name}_pool{stage - 1}_outvar"
                )
                conv = f"{source}_pb{stage}"
            else:
                conv = f"{name}_pool{stage}_outvar_dimred"
            shapes.update(
                _conv_params(conv, block.width, block.width, kernel, False)
            )
        shapes.update(_rcu_params(name, block.output_rcus, block.width, kernel))
        end_vars[f"block{block.index}"] = (
            f"{name}_b{block.output_rcus}_joint_varout"
        )
        widths[f"block{block.index}"] = block.width
    return shapes


def _architecture_facts(architecture):
    facts = {
        "num_paths": architecture.num_paths,
        "path_widths": architecture.path_widths,
        "adapt_rcus": architecture.adapt_rcus,
        "naming_scheme": architecture.naming_scheme,
    }
    for key in PER_BLOCK_FACTS:
        facts[key] = tuple(getattr(b, key) for b in architecture.blocks)
    return facts


def _per_block(key, wanted, count):
    single = not isinstance(wanted, tuple | list) or (
        key == POOL_SIZE_FACT and all(isinstance(v, int) for v in wanted)
    )
    if single:
        wanted = tuple(wanted) if isinstance(wanted, list) else wanted
        return (wanted,) * count
    return tuple(tuple(v) if isinstance(v, list) else v for v in wanted)


def _architecture_differences(architecture, expected):
    facts = _architecture_facts(architecture)
    differences = [
        f"blocks differ in {key}: {facts[key]}"
        for key in UNIFORM_BLOCK_FACTS
        if len(set(facts[key])) > 1
    ]
    for key, wanted in (expected or {}).items():
        if key not in facts:
            raise ValueError(
                f"Unknown architecture fact {key!r}; known: {sorted(facts)}. "
                f"Received: expected={expected!r}"
            )
        found = facts[key]
        if key in PER_BLOCK_FACTS:
            wanted = _per_block(key, wanted, len(found))
        elif isinstance(wanted, list | tuple):
            wanted = tuple(wanted)
        if found != wanted:
            differences.append(f"{key}: file {found}, expected {wanted}")
    return differences


def _batch_norm_issues(layer, dag):
    """mult and bias hold C values, moments C x 2 ([mean, sigma])."""
    shapes = [dag.params[p].shape for p in layer.params if p in dag.params]
    if len(layer.params) != BATCH_NORM_PARAMS or len(shapes) != len(
        layer.params
    ):
        return [f"{layer.name}: BatchNorm with params {layer.params}"]
    channels = int(np.prod(shapes[0]))
    wanted = [(channels, 1), (channels, 1), (channels, 2)]
    return [
        f"{name}: file {tuple(shape)}, expected {want}"
        for name, shape, want in zip(layer.params, shapes, wanted, strict=True)
        if _matlab_shape(shape) != _matlab_shape(want)
        and int(np.prod(shape)) != int(np.prod(want))
    ]


def check_architecture(checkpoint, expected=None):
    """Raises unless the checkpoint is one consistent RefineNet.

    Checks: every layer type is one the converter knows; every parameter a
    layer names exists and no parameter is unused; conv filters match
    their layer's `size`; the decoder parameters are exactly those the
    authors' generator writes for the derived architecture; the
    classifier fits the decoder width; and, where `expected` gives them,
    the architecture facts.

    Args:
        checkpoint: a `MatconvnetCheckpoint`.
        expected: optional dict of facts, any of `num_paths`,
            `path_widths`, `adapt_rcus`, `pooling_order`, `pool_stages`,
            `pool_size`, `output_rcus`, `naming_scheme`.

    Raises:
        MatconvnetCheckpointError: listing the first differences.

    Example:

    >>> check_architecture(ckpt, {"pool_stages": 4})  # doctest: +SKIP
    """
    if checkpoint.problems or checkpoint.architecture is None:
        raise MatconvnetCheckpointError(
            "The MatConvNet checkpoint is incomplete:\n  "
            + "\n  ".join(checkpoint.problems or ("no decoder architecture",))
            + f"\nReceived: path={checkpoint.path!r}"
        )
    groups = []
    for dag, known in (
        (checkpoint.backbone, BACKBONE_LAYER_TYPES),
        (checkpoint.decoder, DECODER_LAYER_TYPES),
    ):
        issues = {
            "unexpected layer types": [],
            "missing params": [],
            "unused params": [],
            "shape mismatches": [],
        }
        named = set()
        for layer in dag.layers:
            if layer.type not in known:
                issues["unexpected layer types"].append(
                    f"{layer.name}: {layer.type}"
                )
            named.update(layer.params)
            for param in layer.params:
                if param not in dag.params:
                    issues["missing params"].append(
                        f"{param} (layer {layer.name})"
                    )
            if (
                layer.type == CONV
                and layer.params
                and layer.params[0] in dag.params
            ):
                size = layer.setting("size")
                shape = _matlab_shape(dag.params[layer.params[0]].shape)
                if size and _matlab_shape(size) != shape:
                    issues["shape mismatches"].append(
                        f"{layer.params[0]}: file {shape}, layer size {size}"
                    )
            if layer.type == BATCH_NORM:
                issues["shape mismatches"] += _batch_norm_issues(layer, dag)
        issues["unused params"] = [p for p in dag.params if p not in named]
        groups.append((dag.group_name, issues))
    expected_shapes = expected_decoder_params(checkpoint.architecture)
    decoder_issues = groups[1][1]
    params = checkpoint.decoder.params
    decoder_issues["missing params"] += [
        f"{name} (expected by the derived architecture)"
        for name in expected_shapes
        if name not in params
    ]
    decoder_issues["unexpected params"] = [
        name for name in params if name not in expected_shapes
    ]
    decoder_issues["shape mismatches"] += [
        f"{name}: file {_matlab_shape(params[name].shape)}, expected "
        f"{_matlab_shape(shape)}"
        for name, shape in expected_shapes.items()
        if name in params
        and _matlab_shape(params[name].shape) != _matlab_shape(shape)
    ]
    classifier = checkpoint.classifier
    last_width = checkpoint.architecture.blocks[-1].width
    other = {"classifier": [], "architecture": []}
    if classifier.filters.shape[2] != last_width:
        other["classifier"].append(
            f"filters {classifier.filters.shape} do not read the decoder "
            f"width {last_width}"
        )
    if classifier.biases.size != classifier.filters.shape[3]:
        other["classifier"].append(
            f"{classifier.biases.size} biases for "
            f"{classifier.filters.shape[3]} outputs"
        )
    other["architecture"] = _architecture_differences(
        checkpoint.architecture, expected
    )
    groups.append(("checkpoint", other))
    lines = []
    for group, issues in groups:
        for title, items in issues.items():
            if not items:
                continue
            shown = items[:MAX_LISTED_DIFFERENCES]
            lines.append(f"  {group}: {len(items)} {title}:")
            lines += [f"    {item}" for item in shown]
            if len(items) > len(shown):
                lines.append(f"    ... and {len(items) - len(shown)} more")
    if lines:
        raise MatconvnetCheckpointError(
            "The MatConvNet checkpoint does not match the RefineNet "
            "architecture:\n"
            + "\n".join(lines)
            + f"\nReceived: path={checkpoint.path!r}"
        )


# === Describing ===


def _describe_dag(dag, lines):
    lines.append(
        f"  {dag.group_name}: {len(dag.layers)} layers, "
        f"{len(dag.params)} params"
    )
    counts = collections.Counter(layer.type for layer in dag.layers)
    lines.append(
        "    layer types: "
        + ", ".join(
            f"{kind} x{count}" for kind, count in sorted(counts.items())
        )
    )
    for layer in dag.layers:
        settings = []
        for key in LISTED_SETTINGS:
            if key == EPSILON_SETTING:
                value = layer.number(key)
            else:
                value = layer.setting(key)
            if value is not None:
                settings.append(f"{key}={value}")
        lines.append(
            f"    {layer.name} [{layer.type}] {list(layer.inputs)} -> "
            f"{list(layer.outputs)}"
            + (f" {' '.join(settings)}" if settings else "")
        )
    lines.append("    params:")
    for name, value in dag.params.items():
        lines.append(f"      {name} {tuple(value.shape)}")


def _describe_torch(path):
    from keras_refinenet.convert.checkpoints import load_torch_state_dict

    state_dict = load_torch_state_dict(path)
    lines = [f"PyTorch checkpoint {path}", f"  {len(state_dict)} tensors:"]
    lines += [f"    {key} {tuple(v.shape)}" for key, v in state_dict.items()]
    return "\n".join(lines)


def describe_checkpoint(path):
    """A readable listing of what a `.mat` (or folder) or `.pth` file holds.

    Groups, layers with types, inputs/outputs and settings, parameter names
    and MATLAB shapes, classes, input scales and the derived architecture
    (for PyTorch files: the `state_dict` names and shapes).

    Args:
        path: a MatConvNet checkpoint file or legacy folder, or a PyTorch
            `.pth`/`.pt` file.

    Returns:
        The text (several lines).

    Example:

    >>> path = "refinenet_res101_cityscapes.mat"
    >>> print(describe_checkpoint(path))  # doctest: +SKIP
    """
    path = os.fspath(path)
    if path.endswith(TORCH_SUFFIXES):
        return _describe_torch(path)
    checkpoint = load_matconvnet_checkpoint(path, strict=False)
    lines = [
        f"MatConvNet checkpoint {path} ({checkpoint.layout})",
        f"  groups: {', '.join(checkpoint.group_names)}",
        f"  input scales: {list(checkpoint.input_scales)}",
    ]
    classifier = checkpoint.classifier
    if classifier is not None:
        lines.append(
            f"  classes: {checkpoint.num_classes} (classifier filters "
            f"{tuple(classifier.filters.shape)}, biases "
            f"{tuple(classifier.biases.shape)}, pad {classifier.pad}, "
            f"dropout {classifier.dropout_rate})"
        )
    backbone = checkpoint.backbone_architecture
    if backbone is not None:
        lines.append(
            f"  backbone ({checkpoint.backbone.group_name}): input "
            f"{backbone.input_var!r}, blocks per stage "
            f"{list(backbone.stage_blocks)}, depth {backbone.depth}, "
            f"outputs {list(backbone.output_vars)}"
        )
    arch = checkpoint.architecture
    if arch is not None:
        lines += [
            f"  decoder ({checkpoint.decoder.group_name}): {arch.num_paths} "
            f"paths, naming {arch.naming_scheme!r}",
            f"    path inputs {list(arch.path_inputs)}",
            f"    input channels {list(arch.path_input_channels)}, widths "
            f"{list(arch.path_widths)}, adaptation RCUs "
            f"{list(arch.adapt_rcus)}",
        ]
        for block in arch.blocks:
            lines.append(
                f"    block {block.index}: fuses {list(block.inputs)}, "
                f"width {block.width}, pooling {block.pooling_order} "
                f"x{block.pool_stages} size {block.pool_size}, output RCUs "
                f"{block.output_rcus}, kernels {list(block.kernel_sizes)}"
            )
    for problem in checkpoint.problems:
        lines.append(f"  problem: {problem}")
    lines.append("Groups in detail:")
    for dag in checkpoint.dags:
        _describe_dag(dag, lines)
    return "\n".join(lines)
