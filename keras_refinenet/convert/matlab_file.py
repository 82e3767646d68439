"""Safe reading of MATLAB `.mat` files (v7.3 HDF5 and v7) into plain Python.

Why our own v7.3 decoder and not `mat-io`: the released RefineNet files are
untrusted downloads of several hundred MB; this reader needs only `h5py`
(already a dependency), reads nothing it is not asked for, bounds every
size a header claims before allocating, and decodes exactly the subset the
authors' files use (numeric, char, logical, empty, struct, struct arrays,
cells, function handles as markers, MCOS handle objects such as `ref_obj`).
`mat-io` is used in the tests only, as an independent check of the
fixtures; it pulls in pandas and converts many classes we never need.

Values come back in MATLAB order and shape:

- numeric and logical arrays: `numpy` arrays with MATLAB's dimensions (an
  H x W x In x Out filter has shape `(H, W, In, Out)`);
- char: `str` (a char matrix: a list of `str`, one per row);
- a 1x1 struct: `dict`; other struct arrays: `StructArray`;
- cells: `numpy` object arrays of MATLAB shape;
- function handles: `FunctionHandle` markers (never evaluated);
- MCOS objects (`MATLAB_object_decode=3`): `MatlabObject` (class name and
  property dict), decoded from the `#subsystem#/MCOS` FileWrapper__ cells;
- anything else: `UnsupportedValue` markers.

v7.3 layout (HDF5 behind a 512-byte MATLAB header): datasets and groups
carry `MATLAB_class`; dimensions are stored reversed; structs are groups
with `MATLAB_fields`; cells and struct-array fields hold object references
into `#refs#`; empty arrays hold their dimensions with `MATLAB_empty=1`.
An MCOS object is a uint32 array `[0xDD000000, ndims, dims..., object
ids..., class id]`. `#subsystem#/MCOS` is a cell whose first element is a
uint8 metadata blob: version, number of names, eight region offsets, the
null-terminated names, then the class table (4 x uint32 per class:
namespace name, class name, 0, 0), the saveobj property table, the object
table (6 x uint32 per object: class id, 0, 0, saveobj id, normal object
id, dependency id) and the property table (per object: count, then (name,
type, value) triples, padded to 8 bytes); a property of type 1 holds the
index of its value among the cells from the third on. Offsets, ids and
counts are checked against the blob before use.

Nothing from a file is executed or unpickled: HDF5 is read with h5py,
v7 with `scipy.io.loadmat` (plain arrays; objects become markers).
"""

import dataclasses
import os

import numpy as np

MAT_HEADER_BYTES = 128
MAT_USERBLOCK_BYTES = 512
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAT_V73_VERSION = 0x0200
MAT_V5_VERSION = 0x0100
VERSION_OFFSET = 124
MCOS_MAGIC = 0xDD000000
MCOS_DECODE = 3
MCOS_VERSIONS = (2, 3, 4)
# Cells after the property values: defaults (v2), + class aliases (v3), +
# one more (v4).
MCOS_TRAILING_CELLS = {2: 1, 3: 2, 4: 3}
MCOS_REGION_COUNT = 8
MCOS_HEADER_WORDS = 2 + MCOS_REGION_COUNT
CLASS_BLOCK_WORDS = 4
OBJECT_BLOCK_WORDS = 6
PROPERTY_TRIPLE_WORDS = 3
PROPERTY_TYPE_ENUM_NAME = 0
PROPERTY_TYPE_CELL = 1
PROPERTY_TYPE_VALUE = 2
FIRST_PROPERTY_CELL = 2
SUBSYSTEM_GROUP = "#subsystem#"
MCOS_DATASET = "MCOS"
REFS_GROUP = "#refs#"
WORD_BYTES = 4
BLOCK_ALIGN = 8

DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_ARRAY_BYTES = 4 * 2**30
DEFAULT_MAX_ELEMENTS = 2**24

NUMERIC_CLASSES = {
    "double": np.float64,
    "single": np.float32,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
}
CHAR_CLASS = "char"
LOGICAL_CLASS = "logical"
STRUCT_CLASS = "struct"
CELL_CLASS = "cell"
FUNCTION_HANDLE_CLASS = "function_handle"
FILEWRAPPER_CLASS = "FileWrapper__"


class MatlabFileError(ValueError):
    """Raised for a `.mat` file that is malformed, too large or unsupported."""


@dataclasses.dataclass(frozen=True)
class FunctionHandle:
    """A MATLAB function handle, kept as a marker and never evaluated.

    Args:
        path: where it was found inside the file.
    """

    path: str


@dataclasses.dataclass(frozen=True)
class UnsupportedValue:
    """A value this reader does not decode (sparse, Java, opaque, ...).

    Args:
        matlab_class: the value's MATLAB class.
        reason: why it was not decoded.
    """

    matlab_class: str
    reason: str


@dataclasses.dataclass
class MatlabObject:
    """A decoded MCOS object (e.g. a handle-class `ref_obj`).

    Args:
        class_name: the MATLAB class (with its namespace, dotted).
        properties: property name -> decoded value.
        object_id: the object's id in the file (shared handles share it).
    """

    class_name: str
    properties: dict
    object_id: int


@dataclasses.dataclass
class StructArray:
    """A MATLAB struct array other than 1x1.

    Args:
        shape: MATLAB dimensions.
        field_names: the fields, in file order.
        elements: one dict per element, in MATLAB (column-major) order.
    """

    shape: tuple
    field_names: tuple
    elements: list

    def __len__(self):
        return len(self.elements)

    def __iter__(self):
        return iter(self.elements)

    def __getitem__(self, index):
        return self.elements[index]


def mat_file_version(path):
    """The MAT-file format of `path`: `"7.3"` (HDF5) or `"5"` (v5/v6/v7).

    Args:
        path: a `.mat` file.

    Returns:
        `"7.3"` or `"5"`.

    Raises:
        MatlabFileError: the file is not a MAT-file.

    Example:

    >>> import tempfile, scipy.io
    >>> path = tempfile.mkdtemp() + "/a.mat"
    >>> scipy.io.savemat(path, {"x": 1.0})
    >>> mat_file_version(path)
    '5'
    """
    try:
        with open(path, "rb") as file:
            header = file.read(MAT_USERBLOCK_BYTES + len(HDF5_SIGNATURE))
    except OSError as error:
        raise MatlabFileError(
            f"Cannot read MAT-file: {error}. Received: path={path!r}"
        ) from error
    if len(header) < MAT_HEADER_BYTES or not header.startswith(b"MATLAB"):
        raise MatlabFileError(
            "Not a MATLAB MAT-file (no 'MATLAB' header text). "
            f"Received: path={path!r}"
        )
    endian = header[VERSION_OFFSET + 2 : VERSION_OFFSET + 4]
    byteorder = "little" if endian == b"IM" else "big"
    if endian not in (b"IM", b"MI"):
        raise MatlabFileError(
            "MAT-file header has no endian indicator 'IM'/'MI'. "
            f"Received: path={path!r}, endian={endian!r}"
        )
    version = int.from_bytes(
        header[VERSION_OFFSET : VERSION_OFFSET + 2], byteorder
    )
    if version == MAT_V73_VERSION:
        if header[MAT_USERBLOCK_BYTES:] != HDF5_SIGNATURE:
            raise MatlabFileError(
                "MAT-file v7.3 header without HDF5 data at byte 512. "
                f"Received: path={path!r}"
            )
        return "7.3"
    if version == MAT_V5_VERSION:
        return "5"
    raise MatlabFileError(
        f"Unknown MAT-file version 0x{version:04x}. Received: path={path!r}"
    )


def load_mat_file(
    path,
    variables=None,
    max_depth=DEFAULT_MAX_DEPTH,
    max_array_bytes=DEFAULT_MAX_ARRAY_BYTES,
):
    """Reads a `.mat` file (v7.3 or v7) into plain Python values.

    Args:
        path: the file.
        variables: names of the variables to read; `None` reads all.
        max_depth: deepest nesting of structs, cells and objects accepted.
        max_array_bytes: largest array (as its header claims) accepted.

    Returns:
        A dict from variable name to value (see the module docstring).

    Raises:
        MatlabFileError: malformed, oversized or unreadable content; the
            message names the file and the path inside it.

    Example:

    >>> import tempfile, scipy.io
    >>> path = tempfile.mkdtemp() + "/a.mat"
    >>> scipy.io.savemat(path, {"s": {"name": "conv1", "size": [3, 3]}})
    >>> value = load_mat_file(path)["s"]
    >>> value["name"], value["size"].shape
    ('conv1', (1, 2))
    """
    path = os.fspath(path)
    version = mat_file_version(path)
    if version == "7.3":
        reader = _HDF5Reader(path, max_depth, max_array_bytes)
        return reader.read_variables(variables)
    return _read_v5(path, variables, max_depth, max_array_bytes)


# === v7.3 (HDF5) ===


def _attr_text(node, name):
    value = node.attrs.get(name)
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else b""
    if isinstance(value, bytes | np.bytes_):
        return value.decode("ascii", "replace")
    return str(value)


def _attr_int(node, name):
    value = node.attrs.get(name)
    if value is None:
        return None
    return int(np.asarray(value).reshape(-1)[0])


class _HDF5Reader:
    def __init__(self, path, max_depth, max_array_bytes):
        self.path = path
        self.max_depth = max_depth
        self.max_array_bytes = max_array_bytes
        self.file = None
        self.subsystem = None
        self.objects = {}
        self.defaults = {}

    def error(self, message, where):
        return MatlabFileError(
            f"{message} Received: path={self.path!r}, inside={where!r}"
        )

    def read_variables(self, variables):
        import h5py

        try:
            self.file = h5py.File(self.path, "r")
        except OSError as error:
            raise self.error(f"Cannot open HDF5 data: {error}.", "/") from error
        try:
            names = [
                name
                for name in self.file.keys()
                if name not in (REFS_GROUP, SUBSYSTEM_GROUP)
            ]
            if variables is not None:
                missing = sorted(set(variables) - set(names))
                if missing:
                    raise self.error(
                        f"Variables {missing} not in the file (it holds "
                        f"{sorted(names)}).",
                        "/",
                    )
                names = [name for name in names if name in set(variables)]
            return {
                name: self.decode(self.file[name], f"/{name}", 0)
                for name in names
            }
        finally:
            self.file.close()

    # --- dispatch ---

    def decode(self, node, where, depth):
        import h5py

        if depth > self.max_depth:
            raise self.error(
                f"Nesting deeper than max_depth={self.max_depth}.", where
            )
        matlab_class = _attr_text(node, "MATLAB_class")
        if matlab_class == FUNCTION_HANDLE_CLASS:
            return FunctionHandle(where)
        if isinstance(node, h5py.Group):
            if matlab_class not in (None, STRUCT_CLASS):
                return UnsupportedValue(str(matlab_class), "group class")
            return self.decode_struct_group(node, where, depth)
        if not isinstance(node, h5py.Dataset):
            raise self.error("Neither a dataset nor a group.", where)
        if _attr_int(node, "MATLAB_empty"):
            return self.decode_empty(node, matlab_class, where)
        if _attr_int(node, "MATLAB_sparse") is not None:
            return UnsupportedValue(str(matlab_class), "sparse array")
        if self.is_object(node, matlab_class):
            return self.decode_object(node, matlab_class, where, depth)
        if node.dtype == h5py.ref_dtype:
            if matlab_class != CELL_CLASS:
                return UnsupportedValue(str(matlab_class), "reference array")
            return self.decode_cell(node, where, depth)
        return self.decode_array(node, matlab_class, where)

    def check_size(self, node, where):
        claimed = int(np.prod(node.shape, dtype=np.int64)) * max(
            node.dtype.itemsize, 1
        )
        if claimed > self.max_array_bytes:
            raise self.error(
                f"Array of {claimed} bytes exceeds max_array_bytes="
                f"{self.max_array_bytes}.",
                where,
            )

    def read(self, node, where):
        self.check_size(node, where)
        try:
            return node[()]
        except (OSError, ValueError, TypeError) as error:
            raise self.error(f"Unreadable dataset: {error}.", where) from error

    def dereference(self, reference, where):
        if not reference:
            raise self.error("Null object reference.", where)
        try:
            return self.file[reference]
        except (KeyError, ValueError, TypeError) as error:
            raise self.error(
                f"Broken object reference: {error}.", where
            ) from error

    # --- leaves ---

    def decode_empty(self, node, matlab_class, where):
        dims = np.asarray(self.read(node, where)).reshape(-1)
        if dims.size > 32 or np.any(dims < 0):
            raise self.error(f"Bad empty-array dimensions {dims}.", where)
        shape = tuple(int(d) for d in dims)
        if shape and int(np.prod(shape)) != 0:
            raise self.error(
                f"MATLAB_empty array claims non-empty dims {shape}.", where
            )
        if matlab_class == CHAR_CLASS:
            return ""
        if matlab_class == CELL_CLASS:
            return np.empty(shape, dtype=object)
        if matlab_class == STRUCT_CLASS:
            return StructArray(shape, (), [])
        if matlab_class == LOGICAL_CLASS:
            return np.zeros(shape, dtype=bool)
        return np.zeros(shape, dtype=NUMERIC_CLASSES.get(matlab_class, "f8"))

    def decode_array(self, node, matlab_class, where):
        data = self.read(node, where)
        data = np.asarray(data)
        if data.dtype.names and set(data.dtype.names) >= {"real", "imag"}:
            data = data["real"] + 1j * data["imag"]
        data = data.T
        if matlab_class == CHAR_CLASS:
            return self.decode_char(data, where)
        if matlab_class == LOGICAL_CLASS:
            return data.astype(bool)
        if matlab_class in NUMERIC_CLASSES or matlab_class is None:
            if data.dtype.kind not in "biufc":
                raise self.error(
                    f"Numeric class {matlab_class!r} with dtype {data.dtype}.",
                    where,
                )
            return data
        return UnsupportedValue(str(matlab_class), "unknown class")

    def decode_char(self, data, where):
        if data.dtype.kind not in "ui":
            raise self.error(f"char data of dtype {data.dtype}.", where)
        codes = data.astype(np.uint32)
        if codes.ndim > 2:
            codes = codes.reshape(codes.shape[0], -1, order="F")
        codes = codes.reshape(codes.shape[0], -1) if codes.ndim else codes
        try:
            rows = ["".join(map(chr, row)) for row in np.atleast_2d(codes)]
        except ValueError as error:
            raise self.error(
                f"Invalid character code: {error}.", where
            ) from error
        return rows[0] if len(rows) == 1 else rows

    # --- containers ---

    def field_names(self, group, where):
        import h5py

        raw = group.attrs.get("MATLAB_fields")
        if raw is None:
            return [name for name in group.keys()]
        if isinstance(raw, h5py.Reference):
            # MATLAB stores long field lists in a dataset it refers to.
            raw = self.read(self.dereference(raw, where), where)
        names = []
        for item in np.asarray(raw, dtype=object).reshape(-1):
            chars = np.asarray(item).reshape(-1)
            names.append(b"".join(bytes(c) for c in chars).decode("ascii"))
        return names

    def decode_struct_group(self, group, where, depth):
        import h5py

        names = self.field_names(group, where)
        members = {name: group[name] for name in names if name in group}
        missing = [name for name in names if name not in group]
        if missing:
            raise self.error(f"Struct fields {missing} have no data.", where)
        is_array = bool(members) and all(
            isinstance(node, h5py.Dataset)
            and node.dtype == h5py.ref_dtype
            and "MATLAB_class" not in node.attrs
            for node in members.values()
        )
        if not is_array:
            return {
                name: self.decode(node, f"{where}.{name}", depth + 1)
                for name, node in members.items()
            }
        shapes = {node.shape for node in members.values()}
        if len(shapes) != 1:
            raise self.error(
                f"Struct array fields differ in shape {shapes}.", where
            )
        shape = tuple(reversed(shapes.pop()))
        count = int(np.prod(shape))
        if count > DEFAULT_MAX_ELEMENTS:
            raise self.error(f"Struct array of {count} elements.", where)
        columns = {}
        for name, node in members.items():
            refs = np.asarray(self.read(node, where)).T.reshape(-1, order="F")
            columns[name] = refs
        elements = []
        for index in range(count):
            element = {}
            for name in names:
                item_where = f"{where}({index + 1}).{name}"
                element[name] = self.decode(
                    self.dereference(columns[name][index], item_where),
                    item_where,
                    depth + 1,
                )
            elements.append(element)
        if shape == (1, 1):
            return elements[0]
        return StructArray(shape, tuple(names), elements)

    def decode_cell(self, node, where, depth):
        refs = np.asarray(self.read(node, where)).T
        if refs.size > DEFAULT_MAX_ELEMENTS:
            raise self.error(f"Cell of {refs.size} elements.", where)
        cell = np.empty(refs.shape, dtype=object)
        for index in np.ndindex(refs.shape):
            item_where = f"{where}{{{','.join(str(i + 1) for i in index)}}}"
            cell[index] = self.decode(
                self.dereference(refs[index], item_where), item_where, depth + 1
            )
        return cell

    # --- MCOS objects ---

    def is_object(self, node, matlab_class):
        if _attr_int(node, "MATLAB_object_decode") == MCOS_DECODE:
            return True
        # Objects inside property values carry no MATLAB_object_decode: they
        # are uint32 columns led by the MCOS magic number.
        if matlab_class not in (None, "uint32") or node.dtype != np.uint32:
            return False
        if node.ndim != 2 or 1 not in node.shape:
            return False
        if not OBJECT_BLOCK_WORDS <= node.size <= DEFAULT_MAX_ELEMENTS:
            return False
        if SUBSYSTEM_GROUP not in self.file:
            return False
        return int(np.asarray(node[()]).reshape(-1)[0]) == MCOS_MAGIC

    def decode_object(self, node, matlab_class, where, depth):
        if matlab_class == FILEWRAPPER_CLASS:
            raise self.error("FileWrapper__ outside #subsystem#.", where)
        words = np.asarray(self.read(node, where)).reshape(-1).astype(np.int64)
        if words.size < OBJECT_BLOCK_WORDS or words[0] != MCOS_MAGIC:
            return UnsupportedValue(str(matlab_class), "not an MCOS object")
        ndims = int(words[1])
        if ndims < 2 or 2 + ndims > words.size:
            raise self.error(f"MCOS object with {ndims} dims.", where)
        shape = tuple(int(d) for d in words[2 : 2 + ndims])
        count = int(np.prod(shape))
        ids = words[2 + ndims : -1]
        if ids.size != count:
            raise self.error(
                f"MCOS object of shape {shape} lists {ids.size} ids.", where
            )
        self.load_subsystem(where)
        objects = [
            self.object_value(int(object_id), where, depth) for object_id in ids
        ]
        if count == 1:
            return objects[0]
        array = np.empty(count, dtype=object)
        array[:] = objects
        return array.reshape(shape, order="F")

    def load_subsystem(self, where):
        if self.subsystem is None:
            self.subsystem = _McosSubsystem(self, where)
        return self.subsystem

    def object_value(self, object_id, where, depth):
        if object_id in self.objects:
            cached = self.objects[object_id]
            if cached is None:
                raise self.error(
                    f"MCOS object {object_id} contains itself.", where
                )
            return cached
        self.objects[object_id] = None
        class_id, class_name, properties = self.subsystem.object_properties(
            object_id, where
        )
        decoded = dict(self.class_defaults(class_id, where, depth))
        for name, kind, value in properties:
            prop_where = f"{where}.{name}"
            if kind == PROPERTY_TYPE_CELL:
                cell_node = self.subsystem.cell(
                    FIRST_PROPERTY_CELL + value, prop_where
                )
                decoded[name] = self.decode(cell_node, prop_where, depth + 1)
            elif kind == PROPERTY_TYPE_ENUM_NAME:
                decoded[name] = self.subsystem.name(value, prop_where)
            else:
                decoded[name] = value
        result = MatlabObject(class_name, decoded, object_id)
        self.objects[object_id] = result
        return result

    def class_defaults(self, class_id, where, depth):
        """Property defaults of a class: MATLAB omits properties that keep
        their default value; the last FileWrapper__ cell holds one struct
        of defaults per class."""
        if class_id not in self.defaults:
            self.defaults[class_id] = {}
            cells = self.subsystem.cells
            trailing = MCOS_TRAILING_CELLS[self.subsystem.version]
            if cells.size >= FIRST_PROPERTY_CELL + trailing:
                here = f"/{SUBSYSTEM_GROUP}/{MCOS_DATASET}{{{cells.size}}}"
                table = self.decode(
                    self.subsystem.cell(cells.size - 1, here), here, depth + 1
                )
                count = len(self.subsystem.classes)
                if (
                    isinstance(table, np.ndarray)
                    and table.dtype == object
                    and table.size == count
                ):
                    entry = table.reshape(-1, order="F")[class_id]
                    if isinstance(entry, dict):
                        self.defaults[class_id] = entry
        return self.defaults[class_id]


class _McosSubsystem:
    """The `#subsystem#/MCOS` FileWrapper__ tables, checked on load."""

    def __init__(self, reader, where):
        self.reader = reader
        file = reader.file
        if (
            SUBSYSTEM_GROUP not in file
            or MCOS_DATASET not in file[SUBSYSTEM_GROUP]
        ):
            raise reader.error(
                "MCOS object but no #subsystem#/MCOS in the file.", where
            )
        wrapper = file[SUBSYSTEM_GROUP][MCOS_DATASET]
        here = f"/{SUBSYSTEM_GROUP}/{MCOS_DATASET}"
        if _attr_text(wrapper, "MATLAB_class") != FILEWRAPPER_CLASS:
            raise reader.error("#subsystem#/MCOS is not a FileWrapper__.", here)
        import h5py

        if wrapper.dtype != h5py.ref_dtype:
            raise reader.error("#subsystem#/MCOS holds no references.", here)
        self.cells = np.asarray(reader.read(wrapper, here)).reshape(-1)
        if self.cells.size < FIRST_PROPERTY_CELL + 1:
            raise reader.error("#subsystem#/MCOS has too few cells.", here)
        blob_node = reader.dereference(self.cells[0], here + "{1}")
        blob = np.asarray(reader.read(blob_node, here + "{1}"))
        if blob.dtype != np.uint8:
            raise reader.error("MCOS metadata is not uint8.", here + "{1}")
        self.parse(blob.reshape(-1).tobytes(), here + "{1}")

    def parse(self, blob, where):
        error = self.reader.error
        if len(blob) < MCOS_HEADER_WORDS * WORD_BYTES:
            raise error("MCOS metadata shorter than its header.", where)
        header = np.frombuffer(blob, "<u4", MCOS_HEADER_WORDS)
        version, name_count = int(header[0]), int(header[1])
        self.version = version
        if version not in MCOS_VERSIONS:
            raise error(
                f"MCOS metadata version {version}, expected one of "
                f"{MCOS_VERSIONS}.",
                where,
            )
        offsets = [int(v) for v in header[2:]]
        start = MCOS_HEADER_WORDS * WORD_BYTES
        bounds = [start, *offsets]
        if any(b > a for b, a in zip(bounds, bounds[1:], strict=False)) or (
            offsets[-1] > len(blob)
        ):
            raise error(f"MCOS region offsets {offsets} out of order.", where)
        raw_names = blob[start : offsets[0]].split(b"\0")
        names = [n.decode("utf-8", "replace") for n in raw_names if n]
        if len(names) < name_count:
            raise error(
                f"MCOS names table holds {len(names)} of {name_count}.", where
            )
        self.names = names[:name_count]
        self.classes = self.fixed_blocks(
            blob, offsets[0], offsets[1], CLASS_BLOCK_WORDS, where
        )
        self.saveobj_properties = self.property_blocks(
            blob, offsets[1], offsets[2], where
        )
        self.object_table = self.fixed_blocks(
            blob, offsets[2], offsets[3], OBJECT_BLOCK_WORDS, where
        )
        self.normal_properties = self.property_blocks(
            blob, offsets[3], offsets[4], where
        )

    def fixed_blocks(self, blob, begin, end, words, where):
        size = words * WORD_BYTES
        if (end - begin) % size:
            raise self.reader.error(
                f"MCOS table [{begin}, {end}) not a multiple of {size} bytes.",
                where,
            )
        table = np.frombuffer(blob[begin:end], "<u4").reshape(-1, words)
        return table.astype(np.int64)

    def property_blocks(self, blob, begin, end, where):
        words = np.frombuffer(blob[begin:end], "<u4").astype(np.int64)
        blocks = []
        position = 0
        while position < words.size:
            count = int(words[position])
            used = 1 + PROPERTY_TRIPLE_WORDS * count
            if position + used > words.size:
                raise self.reader.error(
                    f"MCOS property block of {count} entries overruns its "
                    "region.",
                    where,
                )
            triples = words[position + 1 : position + used].reshape(
                count, PROPERTY_TRIPLE_WORDS
            )
            blocks.append(triples)
            position += used + (used % (BLOCK_ALIGN // WORD_BYTES))
        return blocks

    def name(self, index, where):
        if not 1 <= index <= len(self.names):
            raise self.reader.error(
                f"MCOS name index {index} out of range.", where
            )
        return self.names[index - 1]

    def cell(self, index, where):
        if not 0 <= index < self.cells.size:
            raise self.reader.error(
                f"MCOS property cell {index + 1} of {self.cells.size}.", where
            )
        return self.reader.dereference(self.cells[index], where)

    def object_properties(self, object_id, where):
        error = self.reader.error
        if not 1 <= object_id < len(self.object_table):
            raise error(f"MCOS object id {object_id} not in the table.", where)
        class_id, _, _, saveobj_id, normal_id, _ = self.object_table[object_id]
        if not 1 <= class_id < len(self.classes):
            raise error(f"MCOS class id {class_id} not in the table.", where)
        namespace_index, class_index = self.classes[class_id][:2]
        class_name = self.name(int(class_index), where)
        if namespace_index:
            class_name = (
                f"{self.name(int(namespace_index), where)}.{class_name}"
            )
        if normal_id:
            blocks, block_id = self.normal_properties, int(normal_id)
        else:
            blocks, block_id = self.saveobj_properties, int(saveobj_id)
        if not 0 <= block_id < len(blocks):
            raise error(f"MCOS property block {block_id} missing.", where)
        properties = [
            (self.name(int(name), where), int(kind), int(value))
            for name, kind, value in blocks[block_id]
        ]
        for name, kind, _ in properties:
            if kind not in (
                PROPERTY_TYPE_ENUM_NAME,
                PROPERTY_TYPE_CELL,
                PROPERTY_TYPE_VALUE,
            ):
                raise error(f"MCOS property {name!r} of type {kind}.", where)
        return int(class_id), class_name, properties


# === v5 / v7 (scipy) ===


def _read_v5(path, variables, max_depth, max_array_bytes):
    import scipy.io
    from scipy.io.matlab import MatlabFunction, MatlabOpaque
    from scipy.io.matlab import MatlabObject as ScipyObject

    try:
        contents = scipy.io.loadmat(
            path,
            variable_names=variables,
            squeeze_me=False,
            struct_as_record=True,
            chars_as_strings=False,
        )
    except (ValueError, TypeError, OSError, NotImplementedError) as error:
        raise MatlabFileError(
            f"Cannot read MAT-file v7: {error}. Received: path={path!r}"
        ) from error

    def fail(message, where):
        return MatlabFileError(
            f"{message} Received: path={path!r}, inside={where!r}"
        )

    def convert(value, where, depth):
        if depth > max_depth:
            raise fail(f"Nesting deeper than max_depth={max_depth}.", where)
        if isinstance(value, MatlabFunction):
            return FunctionHandle(where)
        if isinstance(value, ScipyObject):
            return UnsupportedValue(str(value.classname), "v7 class object")
        if isinstance(value, MatlabOpaque):
            # MCOS objects in v7 files: scipy keeps them opaque.
            return UnsupportedValue("opaque", "MCOS object in a v7 file")
        if not isinstance(value, np.ndarray):
            return value
        if value.nbytes > max_array_bytes:
            raise fail(f"Array of {value.nbytes} bytes.", where)
        if value.dtype.names:
            names = value.dtype.names
            elements = []
            flat = value.reshape(-1, order="F")
            for index, record in enumerate(flat):
                elements.append(
                    {
                        name: convert(
                            record[name],
                            f"{where}({index + 1}).{name}",
                            depth + 1,
                        )
                        for name in names
                    }
                )
            if value.shape == (1, 1):
                return elements[0]
            return StructArray(tuple(value.shape), tuple(names), elements)
        if value.dtype.kind == "U":
            rows = ["".join(row) for row in np.atleast_2d(value)]
            if not rows:
                return ""
            return rows[0] if len(rows) == 1 else rows
        if value.dtype == object:
            cell = np.empty(value.shape, dtype=object)
            for index in np.ndindex(value.shape):
                cell[index] = convert(
                    value[index], f"{where}{{{index}}}", depth + 1
                )
            return cell
        return value

    return {
        name: convert(value, f"/{name}", 0)
        for name, value in contents.items()
        if not name.startswith("__")
    }
