"""Every docstring example (`>>>`) of the package runs and prints what it
shows: one test per module, in a fresh temporary working directory and with
the preset cache of `tests/conftest.py`."""

import doctest
import importlib
import io
import pathlib

import pytest

PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[2] / "keras_refinenet"
OPTION_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names():
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


MODULE_NAMES = _module_names()


def test_every_module_is_collected():
    assert "keras_refinenet" in MODULE_NAMES
    assert "keras_refinenet.training.distribute" in MODULE_NAMES
    assert len(MODULE_NAMES) == len(list(PACKAGE_DIR.rglob("*.py")))


@pytest.mark.parametrize("module_name", MODULE_NAMES)
def test_docstring_examples(module_name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=OPTION_FLAGS)
    report = io.StringIO()
    for test in finder.find(module, module_name):
        runner.run(test, out=report.write)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, report.getvalue()
