"""Writes MATLAB v7.3 MAT-files for the tests (fixtures only).

Written from the published description of the format (MATLAB's 128-byte
header text, version 0x0200, 'IM', a 512-byte HDF5 userblock; h5py
datasets with reversed dimensions, `MATLAB_class`, `MATLAB_int_decode`,
`MATLAB_empty`, `MATLAB_fields`, `#refs#` for cells and struct-array
elements; MCOS objects as uint32 `[0xDD000000, 2, 1, 1, object id, class
id]` with `MATLAB_object_decode=3`, and the `#subsystem#/MCOS`
FileWrapper__ cell: metadata blob, an empty cell, one cell per property
value, then the three class-level cells).

Python -> MATLAB: numpy arrays keep their shape as MATLAB dimensions (a
1-D array is a 1xN row); `str` is char; `bool` arrays are logical; `dict`
is a 1x1 struct; `Cell`, `StructArray`, `Object`, `FunctionHandle`,
`Empty` below; Python floats/ints are 1x1 double.
"""

import dataclasses
import time

import h5py
import numpy as np

USERBLOCK_BYTES = 512
HEADER_TEXT_BYTES = 116
MCOS_MAGIC = 0xDD000000
MCOS_VERSION = 4
REGION_COUNT = 8

CLASS_OF_DTYPE = {
    np.dtype("float64"): "double",
    np.dtype("float32"): "single",
    np.dtype("int8"): "int8",
    np.dtype("uint8"): "uint8",
    np.dtype("int16"): "int16",
    np.dtype("uint16"): "uint16",
    np.dtype("int32"): "int32",
    np.dtype("uint32"): "uint32",
    np.dtype("int64"): "int64",
    np.dtype("uint64"): "uint64",
}


@dataclasses.dataclass
class Cell:
    """A MATLAB cell array: `items` in column-major order, `shape` dims."""

    items: list
    shape: tuple = None

    def dims(self):
        return self.shape if self.shape is not None else (1, len(self.items))


@dataclasses.dataclass
class StructArray:
    """A MATLAB struct array: one dict per element (same fields)."""

    elements: list
    field_names: tuple = None
    shape: tuple = None

    def dims(self):
        return self.shape if self.shape is not None else (1, len(self.elements))

    def names(self):
        if self.field_names is not None:
            return tuple(self.field_names)
        return tuple(self.elements[0]) if self.elements else ()


@dataclasses.dataclass(eq=False)
class Object:
    """An MCOS object of `class_name` with `properties` (name -> value).

    The same `Object` instance written twice is one handle (one id).
    """

    class_name: str
    properties: dict


@dataclasses.dataclass
class FunctionHandle:
    """A MATLAB function handle (written as an opaque struct)."""

    text: str


@dataclasses.dataclass
class Empty:
    """An empty array of a MATLAB class with the given dimensions."""

    matlab_class: str = "double"
    shape: tuple = (0, 0)


def _header_bytes(description):
    text = (
        "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: "
        + time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(0))
        + f" HDF5 schema 1.00 . {description}"
    ).encode("ascii")
    text = text[:HEADER_TEXT_BYTES].ljust(HEADER_TEXT_BYTES, b" ")
    subsystem_offset = b"\0" * 8
    version = (0x0200).to_bytes(2, "little")
    return (text + subsystem_offset + version + b"IM").ljust(
        USERBLOCK_BYTES, b"\0"
    )


def _ascii_attr(node, name, text):
    node.attrs.create(name, np.bytes_(text.encode("ascii")))


class _Writer:
    def __init__(self, file, nested_objects_without_decode=True, defaults=None):
        self.file = file
        self.class_defaults = defaults or {}
        self.refs = file.require_group("#refs#")
        self.counter = 0
        self.objects = []
        self.object_ids = {}
        self.nested_objects_without_decode = nested_objects_without_decode

    def new_name(self):
        self.counter += 1
        return f"r{self.counter:05d}"

    def write(self, group, name, value, top_level=False):
        if isinstance(value, dict):
            self.write_struct(group, name, value)
        elif isinstance(value, StructArray):
            self.write_struct_array(group, name, value)
        elif isinstance(value, Cell):
            self.write_cell(group, name, value)
        elif isinstance(value, Object):
            self.write_object(group, name, value, top_level)
        elif isinstance(value, FunctionHandle):
            workspace = {"function": value.text, "type": "simple", "file": ""}
            self.write_struct(group, name, {"function_handle": workspace})
            node = group[name]
            _ascii_attr(node, "MATLAB_class", "function_handle")
            node.attrs.create("MATLAB_object_decode", np.int32(1))
        elif isinstance(value, Empty):
            node = group.create_dataset(
                name, data=np.array(value.shape, np.uint64)
            )
            _ascii_attr(node, "MATLAB_class", value.matlab_class)
            node.attrs.create("MATLAB_empty", np.uint8(1))
        elif isinstance(value, str):
            self.write_char(group, name, value)
        elif isinstance(value, bool | np.bool_):
            self.write_array(group, name, np.array([[value]]))
        elif isinstance(value, int | float):
            self.write_array(group, name, np.array([[value]], np.float64))
        elif isinstance(value, np.ndarray):
            self.write_array(group, name, value)
        else:
            raise TypeError(f"cannot write {type(value)} at {name}")

    def write_char(self, group, name, text):
        if not text:
            self.write(group, name, Empty("char", (0, 0)))
            return
        codes = np.array([[ord(c) for c in text]], np.uint16)
        node = group.create_dataset(name, data=codes.T)
        _ascii_attr(node, "MATLAB_class", "char")
        node.attrs.create("MATLAB_int_decode", np.int32(2))

    def write_array(self, group, name, array):
        array = np.asarray(array)
        if array.ndim < 2:
            array = array.reshape(1, -1)
        if array.size == 0:
            matlab_class = (
                "logical"
                if array.dtype == bool
                else CLASS_OF_DTYPE[array.dtype]
            )
            self.write(group, name, Empty(matlab_class, array.shape))
            return
        if array.dtype == bool:
            node = group.create_dataset(name, data=array.T.astype(np.uint8))
            _ascii_attr(node, "MATLAB_class", "logical")
            node.attrs.create("MATLAB_int_decode", np.int32(1))
            return
        node = group.create_dataset(name, data=np.ascontiguousarray(array.T))
        _ascii_attr(node, "MATLAB_class", CLASS_OF_DTYPE[array.dtype])

    def fields_attr(self, node, names):
        vlen = h5py.vlen_dtype(np.dtype("S1"))
        data = np.empty(len(names), dtype=object)
        for index, field in enumerate(names):
            data[index] = np.array([c.encode() for c in field], dtype="S1")
        node.attrs.create("MATLAB_fields", data, dtype=vlen)

    def write_struct(self, group, name, fields):
        node = group.create_group(name)
        _ascii_attr(node, "MATLAB_class", "struct")
        self.fields_attr(node, list(fields))
        for field, value in fields.items():
            self.write(node, field, value)

    def reference(self, value):
        name = self.new_name()
        self.write(self.refs, name, value)
        return self.refs[name].ref

    def write_struct_array(self, group, name, value):
        dims = tuple(value.dims())
        names = value.names()
        node = group.create_group(name)
        _ascii_attr(node, "MATLAB_class", "struct")
        self.fields_attr(node, names)
        for field in names:
            refs = np.empty(len(value.elements), dtype=h5py.ref_dtype)
            for index, element in enumerate(value.elements):
                refs[index] = self.reference(element[field])
            matlab = refs.reshape(dims, order="F")
            node.create_dataset(field, data=matlab.T, dtype=h5py.ref_dtype)

    def write_cell(self, group, name, value):
        dims = tuple(value.dims())
        if not value.items:
            self.write(group, name, Empty("cell", dims))
            return
        refs = np.empty(len(value.items), dtype=h5py.ref_dtype)
        for index, item in enumerate(value.items):
            refs[index] = self.reference(item)
        matlab = refs.reshape(dims, order="F")
        node = group.create_dataset(name, data=matlab.T, dtype=h5py.ref_dtype)
        _ascii_attr(node, "MATLAB_class", "cell")

    def write_object(self, group, name, value, top_level):
        key = id(value)
        if key not in self.object_ids:
            self.objects.append(value)
            self.object_ids[key] = len(self.objects)
        object_id = self.object_ids[key]
        class_id = self.class_id(value.class_name)
        words = np.array(
            [[MCOS_MAGIC, 2, 1, 1, object_id, class_id]], np.uint32
        )
        node = group.create_dataset(name, data=words)
        if top_level or not self.nested_objects_without_decode:
            _ascii_attr(node, "MATLAB_class", value.class_name)
            node.attrs.create("MATLAB_object_decode", np.int32(3))
        else:
            # Inside property values an object is a plain uint32 column.
            _ascii_attr(node, "MATLAB_class", "uint32")

    def class_id(self, class_name):
        if not hasattr(self, "class_names"):
            self.class_names = []
        if class_name not in self.class_names:
            self.class_names.append(class_name)
        return self.class_names.index(class_name) + 1

    def write_subsystem(self, version=MCOS_VERSION):
        """Property values go to cells 3..; objects met there are queued."""
        property_cells = []
        property_blocks = []
        done = 0
        while done < len(self.objects):
            obj = self.objects[done]
            done += 1
            block = []
            for prop, prop_value in obj.properties.items():
                block.append((prop, len(property_cells)))
                property_cells.append(self.reference(prop_value))
            property_blocks.append(block)
        class_names = getattr(self, "class_names", [])
        names = []
        for class_name in class_names:
            names.append(class_name)
        for obj in self.objects:
            for prop in obj.properties:
                if prop not in names:
                    names.append(prop)
        blob = _metadata_blob(
            names, class_names, self.objects, property_blocks, version
        )
        cells = [self.reference(np.frombuffer(blob, np.uint8).reshape(-1, 1))]
        cells.append(self.reference(Empty("canonical empty", (0, 0))))
        cells.extend(property_cells)
        class_count = len(class_names) + 1
        cells.append(self.reference(Cell([Empty("struct")] * class_count)))
        cells.append(self.reference(np.zeros((class_count, 1), np.int32)))
        defaults = [Empty("struct")] + [
            self.class_defaults.get(
                class_name,
                {prop: Empty() for prop in self.class_properties(class_name)},
            )
            for class_name in class_names
        ]
        cells.append(self.reference(Cell(defaults, (class_count, 1))))
        group = self.file.create_group("#subsystem#")
        refs = np.array(cells, dtype=h5py.ref_dtype).reshape(1, -1)
        node = group.create_dataset("MCOS", data=refs, dtype=h5py.ref_dtype)
        _ascii_attr(node, "MATLAB_class", "FileWrapper__")
        node.attrs.create("MATLAB_object_decode", np.int32(3))

    def class_properties(self, class_name):
        props = []
        for obj in self.objects:
            if obj.class_name == class_name:
                props.extend(p for p in obj.properties if p not in props)
        return props


def _padded(words):
    if len(words) % 2:
        words = [*words, 0]
    return words


def _metadata_blob(names, class_names, objects, property_blocks, version):
    """Version, name count, 8 region offsets, names, then the regions."""
    index = {name: position + 1 for position, name in enumerate(names)}
    name_bytes = b"".join(name.encode("ascii") + b"\0" for name in names)
    name_bytes = name_bytes.ljust(-(-len(name_bytes) // 8) * 8, b"\0")
    classes = [0, 0, 0, 0]
    for class_name in class_names:
        namespace, _, short = class_name.rpartition(".")
        if namespace:
            raise ValueError("namespaced classes are not needed here")
        classes += [0, index[short], 0, 0]
    saveobj = [0, 0]
    table = [0] * 6
    for object_id, obj in enumerate(objects, start=1):
        class_id = class_names.index(obj.class_name) + 1
        table += [class_id, 0, 0, 0, object_id, object_id]
    properties = [0, 0]
    for block in property_blocks:
        words = [len(block)]
        for prop, cell_index in block:
            words += [index[prop], 1, cell_index]
        properties += _padded(words)
    dynamic = [0, 0] + [0, 0] * len(objects)
    regions = [classes, saveobj, table, properties, dynamic, [], []]
    start = 4 * (2 + REGION_COUNT) + len(name_bytes)
    offsets = []
    body = b""
    for region in regions:
        offsets.append(start + len(body))
        body += np.array(region, "<u4").tobytes()
    offsets.append(start + len(body))
    header = np.array([version, len(names), *offsets], "<u4").tobytes()
    return header + name_bytes + body


def write_mat_v73(
    path, variables, description="keras-refinenet fixture", class_defaults=None
):
    """Writes `variables` (name -> value) as a MATLAB v7.3 MAT-file.

    Args:
        path: the file to write.
        variables: dict from variable name to a value (see module doc).
        description: text placed in the 116-byte header.
        class_defaults: class name -> dict of property defaults, written to
            the last FileWrapper__ cell (an object omits a property that
            keeps its default, as MATLAB does).
    """
    with h5py.File(path, "w", userblock_size=USERBLOCK_BYTES) as file:
        writer = _Writer(file, defaults=class_defaults)
        for name, value in variables.items():
            writer.write(file, name, value, top_level=True)
        if writer.objects:
            writer.write_subsystem()
    with open(path, "r+b") as file:
        file.write(_header_bytes(description))
