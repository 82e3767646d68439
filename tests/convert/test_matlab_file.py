"""The MAT v7.3 / v7 reader, on files written in MATLAB's layout.

`mat-io` (PyPI, when installed) reads the same fixtures as an independent
decoder: equal values show that the writer follows the format and that
our decoder agrees with another one, MCOS objects included.
"""

import h5py
import numpy as np
import pytest
import scipy.io

from keras_refinenet.convert.matlab_file import (
    FunctionHandle as FunctionHandleMarker,
)
from keras_refinenet.convert.matlab_file import (
    MatlabFileError,
    MatlabObject,
    StructArray,
    load_mat_file,
    mat_file_version,
)
from tests.convert.matlab_v73_writer import (
    Cell,
    Empty,
    FunctionHandle,
    Object,
    write_mat_v73,
)
from tests.convert.matlab_v73_writer import StructArray as WriterStructArray

MCOS_MAGIC = 0xDD000000


def sample_variables():
    rng = np.random.default_rng(0)
    filters = rng.normal(size=(3, 3, 4, 2)).astype(np.float32)
    shared = Object("ref_obj", {"ref": {"layers": Cell([{"type": "conv"}])}})
    config = Object(
        "ref_obj",
        {
            "ref": {
                "group_infos": Cell(
                    [
                        {"name": "featnet_1", "net_info": shared},
                        {"name": "loss_group", "net_info": shared},
                    ],
                    (2, 1),
                ),
                "net_input_img_scales": 1.2,
                "flags": np.array([[0.0, 0.0, 1.0, 1.0, 0.0]]),
                "fn": FunctionHandle("@cnn_layer_dense_softmaxloss_forward"),
            }
        },
    )
    return filters, {
        "filters": filters,
        "biases": np.arange(5, dtype=np.float32).reshape(1, 5),
        "counts": np.array([[1, 2], [3, 4], [5, 6]], np.int32),
        "name": "adapt_stage1_b1_conv",
        "flag": np.array([[True, False, True]]),
        "empty": Empty("single", (0, 0)),
        "params": WriterStructArray(
            [
                {"name": "conv1_filter", "value": filters},
                {"name": "conv1_bias", "value": np.ones((1, 2), np.float32)},
            ]
        ),
        "inputs": Cell(["x1", "x2", "x3"], (3, 1)),
        "block": {"size": np.array([[3.0, 3.0, 4.0, 2.0]]), "method": "max"},
        "net_config": config,
    }


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("mat") / "sample.mat"
    filters, variables = sample_variables()
    write_mat_v73(path, variables)
    return path, filters


def test_header_and_version(sample):
    path, _ = sample
    with open(path, "rb") as file:
        header = file.read(128)
    assert header.startswith(b"MATLAB 7.3 MAT-file")
    assert header[124:128] == b"\x00\x02IM"
    assert mat_file_version(path) == "7.3"


def test_values_come_back_in_matlab_order(sample):
    path, filters = sample
    values = load_mat_file(path)
    assert values["filters"].shape == (3, 3, 4, 2)
    assert values["filters"].dtype == np.float32
    np.testing.assert_array_equal(values["filters"], filters)
    assert values["filters"][1, 2, 3, 0] == filters[1, 2, 3, 0]
    assert values["biases"].shape == (1, 5)
    np.testing.assert_array_equal(values["counts"], [[1, 2], [3, 4], [5, 6]])
    assert values["counts"].dtype == np.int32
    assert values["name"] == "adapt_stage1_b1_conv"
    np.testing.assert_array_equal(values["flag"], [[True, False, True]])
    assert values["flag"].dtype == bool
    assert values["empty"].shape == (0, 0)
    assert values["empty"].dtype == np.float32
    params = values["params"]
    assert isinstance(params, StructArray)
    assert params.shape == (1, 2)
    assert [p["name"] for p in params] == ["conv1_filter", "conv1_bias"]
    np.testing.assert_array_equal(params[0]["value"], filters)
    assert values["inputs"].shape == (3, 1)
    assert list(values["inputs"][:, 0]) == ["x1", "x2", "x3"]
    assert values["block"]["method"] == "max"


def test_mcos_handle_objects_are_decoded(sample):
    path, _ = sample
    config = load_mat_file(path, variables=["net_config"])["net_config"]
    assert isinstance(config, MatlabObject)
    assert config.class_name == "ref_obj"
    ref = config.properties["ref"]
    assert float(ref["net_input_img_scales"][0, 0]) == 1.2
    first, second = ref["group_infos"][:, 0]
    assert first["name"] == "featnet_1"
    assert isinstance(first["net_info"], MatlabObject)
    # One handle saved twice is one object.
    assert first["net_info"] is second["net_info"]
    layers = first["net_info"].properties["ref"]["layers"]
    assert layers[0, 0]["type"] == "conv"
    assert isinstance(ref["fn"], FunctionHandleMarker)


def _ours(value):
    if isinstance(value, MatlabObject):
        return ("object", value.class_name, _ours(value.properties))
    if isinstance(value, dict):
        return {key: _ours(item) for key, item in value.items()}
    if isinstance(value, StructArray):
        return ("structs", [_ours(e) for e in value.elements])
    if isinstance(value, FunctionHandleMarker):
        return "function_handle"
    if isinstance(value, np.ndarray) and value.dtype == object:
        return ("cell", [_ours(item) for item in value.reshape(-1, order="F")])
    return value


def _theirs(value, matio):
    from matio.utils.matclass import MatlabFunction, MatlabOpaque

    if isinstance(value, MatlabFunction):
        return "function_handle"
    if isinstance(value, MatlabOpaque):
        return ("object", value.classname, _theirs(value.properties, matio))
    if isinstance(value, dict):
        return {key: _theirs(item, matio) for key, item in value.items()}
    if isinstance(value, np.ndarray) and value.dtype.names:
        elements = [
            {name: _theirs(record[name], matio) for name in value.dtype.names}
            for record in value.reshape(-1, order="F")
        ]
        return elements[0] if value.size == 1 else ("structs", elements)
    if isinstance(value, np.ndarray) and value.dtype.kind == "U":
        return "".join(value.reshape(-1))
    if isinstance(value, np.ndarray) and value.dtype == object:
        flat = value.reshape(-1, order="F")
        return ("cell", [_theirs(item, matio) for item in flat])
    return value


def _assert_same(ours, theirs, where="value"):
    if isinstance(ours, dict):
        assert isinstance(theirs, dict), where
        assert list(ours) == list(theirs), where
        for key in ours:
            _assert_same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(ours, tuple):
        assert isinstance(theirs, tuple) and ours[0] == theirs[0], where
        _assert_same(list(ours[1:]), list(theirs[1:]), where)
    elif isinstance(ours, list):
        assert len(ours) == len(theirs), where
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _assert_same(a, b, f"{where}[{index}]")
    elif isinstance(ours, np.ndarray):
        theirs = np.asarray(theirs)
        assert ours.shape == theirs.shape, (where, ours.shape, theirs.shape)
        assert ours.dtype == theirs.dtype, (where, ours.dtype, theirs.dtype)
        np.testing.assert_array_equal(ours, theirs, err_msg=where)
    else:
        assert ours == theirs, (where, ours, theirs)


def test_mat_io_reads_the_fixture_to_the_same_values(sample):
    matio = pytest.importorskip("matio")
    path, _ = sample
    theirs = matio.load_from_mat(str(path))
    ours = load_mat_file(path)
    for name, value in ours.items():
        _assert_same(_ours(value), _theirs(theirs[name], matio), name)


def test_omitted_properties_take_the_class_default(tmp_path):
    path = tmp_path / "defaults.mat"
    defaults = {"ref_obj": {"ref": np.array([[7.0]])}}
    write_mat_v73(
        path,
        {"a": Object("ref_obj", {}), "b": Object("ref_obj", {"ref": 1.0})},
        class_defaults=defaults,
    )
    values = load_mat_file(path)
    assert values["a"].properties["ref"][0, 0] == 7.0
    assert values["b"].properties["ref"][0, 0] == 1.0
    matio = pytest.importorskip("matio")
    theirs = matio.load_from_mat(str(path))
    assert theirs["a"].properties["ref"][0, 0] == 7.0
    assert theirs["b"].properties["ref"][0, 0] == 1.0


def test_v7_files_are_read_with_scipy(tmp_path):
    path = tmp_path / "legacy.mat"
    params = np.zeros((1, 2), dtype=[("name", object), ("value", object)])
    params[0, 0] = ("conv1_filter", np.ones((3, 3, 4, 2), np.float32))
    params[0, 1] = ("conv1_bias", np.ones((1, 2), np.float32))
    cell = np.empty((2, 1), dtype=object)
    cell[0, 0], cell[1, 0] = "a", "bc"
    scipy.io.savemat(path, {"params": params, "inputs": cell, "x": 2.0})
    assert mat_file_version(path) == "5"
    values = load_mat_file(path)
    assert isinstance(values["params"], StructArray)
    assert values["params"][0]["name"] == "conv1_filter"
    assert values["params"][0]["value"].shape == (3, 3, 4, 2)
    assert list(values["inputs"][:, 0]) == ["a", "bc"]
    assert values["x"].shape == (1, 1)


# === Malformed files ===


def _rewrite_blob(path, edit):
    """Edits the FileWrapper__ metadata blob of a written fixture."""
    with h5py.File(path, "r+") as file:
        ref = file["#subsystem#/MCOS"][0, 0]
        node = file[ref]
        blob = bytearray(node[()].reshape(-1).tobytes())
        edit(blob)
        data = np.frombuffer(bytes(blob), np.uint8).reshape(node.shape)
        name = node.name
        attrs = dict(node.attrs)
        del file[name]
        new = file.create_dataset(name, data=data)
        for key, value in attrs.items():
            new.attrs[key] = value
        cells = file["#subsystem#/MCOS"][()]
        cells[0, 0] = new.ref
        file["#subsystem#/MCOS"][...] = cells


def _object_file(tmp_path):
    path = tmp_path / "object.mat"
    write_mat_v73(path, {"net_config": Object("ref_obj", {"ref": 1.0})})
    return path


def _words(blob):
    return np.frombuffer(bytes(blob[:40]), "<u4")


@pytest.mark.parametrize(
    "edit,message",
    [
        (
            lambda b: b.__setitem__(slice(0, 4), (9).to_bytes(4, "little")),
            "version 9",
        ),
        (
            lambda b: b.__setitem__(
                slice(8, 12), (10**6).to_bytes(4, "little")
            ),
            "out of order",
        ),
        (
            lambda b: b.__setitem__(slice(4, 8), (99).to_bytes(4, "little")),
            "names table",
        ),
    ],
)
def test_bad_mcos_metadata_is_refused(tmp_path, edit, message):
    path = _object_file(tmp_path)
    _rewrite_blob(path, edit)
    with pytest.raises(MatlabFileError, match=message) as error:
        load_mat_file(path)
    assert str(path) in str(error.value)
    assert "#subsystem#/MCOS" in str(error.value)


def test_bad_object_ids_are_refused(tmp_path):
    path = _object_file(tmp_path)
    with h5py.File(path, "r+") as file:
        file["net_config"][...] = np.array(
            [[MCOS_MAGIC, 2, 1, 1, 7, 1]], np.uint32
        )
    with pytest.raises(MatlabFileError, match="object id 7"):
        load_mat_file(path)


def test_object_without_subsystem_is_refused(tmp_path):
    path = _object_file(tmp_path)
    with h5py.File(path, "r+") as file:
        del file["#subsystem#"]
    with pytest.raises(MatlabFileError, match="no #subsystem#"):
        load_mat_file(path)


def test_claimed_sizes_are_bounded(sample):
    path, _ = sample
    with pytest.raises(MatlabFileError, match="max_array_bytes"):
        load_mat_file(path, variables=["filters"], max_array_bytes=64)


def test_self_referencing_cell_stops_at_the_depth_limit(tmp_path):
    path = tmp_path / "loop.mat"
    write_mat_v73(path, {"c": Cell([1.0])})
    with h5py.File(path, "r+") as file:
        del file["c"]
        loop = file.create_dataset("c", (1, 1), dtype=h5py.ref_dtype)
        loop.attrs["MATLAB_class"] = np.bytes_(b"cell")
        loop[0, 0] = loop.ref
    with pytest.raises(MatlabFileError, match="max_depth=8"):
        load_mat_file(path, max_depth=8)


def test_not_a_mat_file(tmp_path):
    path = tmp_path / "model.mat"
    path.write_bytes(b"<html>not found</html>" * 10)
    with pytest.raises(MatlabFileError, match="Not a MATLAB MAT-file"):
        load_mat_file(path)
    header_only = tmp_path / "truncated.mat"
    with open(_object_file(tmp_path), "rb") as file:
        header_only.write_bytes(file.read(600)[:512] + b"\0" * 88)
    with pytest.raises(MatlabFileError, match="without HDF5"):
        load_mat_file(header_only)
    with pytest.raises(MatlabFileError, match="Cannot read"):
        load_mat_file(tmp_path / "absent.mat")


def test_missing_variable_is_named(sample):
    path, _ = sample
    with pytest.raises(MatlabFileError, match="saved_net_config"):
        load_mat_file(path, variables=["saved_net_config"])


def test_field_list_stored_as_a_reference(tmp_path):
    """MATLAB keeps long field lists in a dataset the attribute refers to."""
    path = tmp_path / "fields.mat"
    write_mat_v73(path, {"s": {"zeta": 1.0, "beta": "b"}})
    with h5py.File(path, "r+") as file:
        names = file["s"].attrs["MATLAB_fields"]
        store = file["#refs#"].create_dataset(
            "fields", data=names, dtype=h5py.vlen_dtype(np.dtype("S1"))
        )
        del file["s"].attrs["MATLAB_fields"]
        file["s"].attrs.create("MATLAB_fields", store.ref)
    value = load_mat_file(path)["s"]
    assert list(value) == ["zeta", "beta"]
    assert value["beta"] == "b"
