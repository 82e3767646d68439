"""Lazy package exports: a name is imported from its module on first use.

A package `__init__` lists its exports as imports inside an
`if TYPE_CHECKING:` block (read by type checkers, IDEs and the docs
generator, never run) and hands its file to `lazy_exports`, which reads
that block and returns the module `__getattr__` and `__dir__`. So
`import keras_refinenet` imports neither Keras nor TensorFlow; the first
`keras_refinenet.RefineNet` imports the model (and what it needs).
"""

import ast
import importlib
import importlib.util


def exported_names(path):
    """`{name: (module, name there)}` of a file's `if TYPE_CHECKING:`
    imports.

    Args:
        path: the package `__init__.py`.

    Returns:
        A dict from exported name to the module that defines it and the
        name it has there (they differ for `import X as Y`).

    Example:

    >>> import keras_refinenet.training as training
    >>> exported_names(training.__file__)["MeanIoU"]
    ('keras_refinenet.training.metrics', 'MeanIoU')
    """
    with open(path, encoding="utf-8") as file:
        tree = ast.parse(file.read())
    exports = {}
    for node in tree.body:
        is_type_checking = (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        )
        if not is_type_checking:
            continue
        for statement in node.body:
            if isinstance(statement, ast.ImportFrom) and statement.module:
                for alias in statement.names:
                    exports[alias.asname or alias.name] = (
                        statement.module,
                        alias.name,
                    )
    return exports


def lazy_exports(package_name, path, submodules=()):
    """Module `__getattr__` and `__dir__` of a package with lazy exports.

    Args:
        package_name: the package's `__name__`.
        path: the package's `__file__` (its `TYPE_CHECKING` imports are the
            exports).
        submodules: subpackages and modules listed by `dir()`; every
            module of the package is reachable as an attribute
            (`keras_refinenet.training.losses`) without an import statement.

    Returns:
        `(__getattr__, __dir__)` to assign in the package.
    """
    exports = exported_names(path)
    submodules = tuple(submodules)

    def __getattr__(name):
        module_name, original = exports.get(name, (None, name))
        if name in submodules or module_name == package_name:
            value = importlib.import_module(f"{package_name}.{original}")
        elif module_name:
            value = getattr(importlib.import_module(module_name), original)
        elif not name.startswith("_") and importlib.util.find_spec(
            f"{package_name}.{name}"
        ):
            # Any module of the package, as an eager `__init__` allowed.
            value = importlib.import_module(f"{package_name}.{name}")
        else:
            raise AttributeError(
                f"module {package_name!r} has no attribute {name!r}"
            )
        package = importlib.import_module(package_name)
        setattr(package, name, value)
        return value

    def __dir__():
        package = importlib.import_module(package_name)
        return sorted(set(vars(package)) | set(exports) | set(submodules))

    return __getattr__, __dir__
