"""The documentation site: generated pages, coverage and a strict build."""

import ast
import importlib.util
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PACKAGE_DIR = ROOT / "keras_refinenet"


def _load(name):
    spec = importlib.util.spec_from_file_location(
        name, DOCS / "hooks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load("generate")
doctest_blocks = _load("doctest_blocks")


def _all_modules():
    return sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(
            ".__init__"
        )
        for path in PACKAGE_DIR.rglob("*.py")
    )


def _documented_modules():
    return {
        module
        for _, entries, _ in generate.API_PAGES.values()
        for entry in entries
        for module in generate.api_modules(entry)
    }


def _public_definitions(module):
    tree = ast.parse(generate._module_path(module).read_text())
    return [
        node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
        and not node.name.startswith("_")
    ]


def test_preset_table_lists_every_registered_preset():
    from keras_refinenet.models.presets import PRESETS

    page = generate.render_presets_page((DOCS / "presets.md").read_text())
    for name in PRESETS:
        assert f"| `{name}` |" in page, name
    assert generate.PRESET_TABLE_MARKER not in page


def test_preset_table_follows_the_registry():
    from keras_refinenet.models.presets import PRESETS

    name = next(iter(PRESETS))
    registry = {"my_preset": PRESETS[name]}
    table = generate.preset_table(registry)
    assert "| `my_preset` |" in table
    assert f"`{name}`" not in table


def test_presets_page_is_not_written_by_hand():
    from keras_refinenet.models.presets import PRESETS

    source = (DOCS / "presets.md").read_text()
    assert generate.PRESET_TABLE_MARKER in source
    rows = [line for line in source.splitlines() if line.startswith("|")]
    assert not any(f"`{name}`" in row for row in rows for name in PRESETS)


def test_preset_page_without_marker_is_refused():
    with pytest.raises(ValueError, match="Received: "):
        generate.render_presets_page("# Presets\n")


def test_every_module_has_an_api_section():
    skipped = set(generate.SKIPPED_MODULES)
    missing = set(_all_modules()) - _documented_modules() - skipped
    assert not missing, f"add these packages to API_PAGES: {sorted(missing)}"


def test_api_page_renders_each_module_and_links_exports():
    page = generate.api_page("layers")
    assert "::: keras_refinenet.layers.residual_conv_unit" in page
    assert (
        "[`RefineNetBlock`][keras_refinenet.layers.refinenet_block."
        "RefineNetBlock]" in page
    )


def test_every_public_function_and_class_has_a_docstring():
    # mkdocstrings leaves objects without a docstring out of the reference.
    missing = [
        f"{module}.{node.name}"
        for module in sorted(_documented_modules())
        for node in _public_definitions(module)
        if not ast.get_docstring(node)
    ]
    assert not missing, missing


def test_exported_api_has_examples():
    packages = [
        module
        for module in _all_modules()
        if generate._module_path(module).name == "__init__.py"
    ]
    missing = []
    for package in packages:
        for name, module in generate.package_exports(package):
            for node in _public_definitions(module):
                if node.name != name:
                    continue
                is_error = isinstance(node, ast.ClassDef) and any(
                    getattr(base, "id", "").endswith(("Error", "Exception"))
                    for base in node.bases
                )
                if not is_error and ">>>" not in ast.get_docstring(node):
                    missing.append(f"{module}.{name}")
    assert not missing, f"exported without an Example: {sorted(missing)}"


def test_doctests_become_code_blocks():
    text = "Example:\n\n>>> f(1)\n[1, 2]\n\nAfter."
    fenced = doctest_blocks.fence_doctests(text)
    assert fenced == "Example:\n\n```pycon\n>>> f(1)\n[1, 2]\n```\n\nAfter."
    assert doctest_blocks.fence_doctests("No examples.") == "No examples."


def test_copied_pages_unlink_files_outside_the_site(tmp_path, monkeypatch):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "README.md").write_text(
        "See [the script](forward.py) and [keras](https://keras.io)."
    )
    monkeypatch.setattr(generate, "REPO_ROOT", tmp_path)
    text = generate.copied_markdown("benchmarks/README.md")
    assert text == (
        "See the script (`benchmarks/forward.py`) and [keras](https://keras.io)."
    )


def test_home_page_diagram_uses_real_layer_names():
    from keras_refinenet import tiny_refinenet

    text = (DOCS / "index.md").read_text()
    diagram = text.split("```text", 1)[1].split("```", 1)[0]
    names = set(
        re.findall(
            r"\b(level\d_\w+|refinenet_block\d|classifier(?:_dropout)?|"
            r"image_encoder|logits|upsample)\b",
            diagram,
        )
    )
    assert len(names) >= 12, names
    model = tiny_refinenet(num_classes=2)
    layers = [*model.layers, *model.backbone.layers]
    layer_names = {layer.name for layer in layers}
    assert not names - layer_names, sorted(names - layer_names)


def test_every_example_is_on_the_examples_page():
    page = (DOCS / "examples.md").read_text()
    for script in sorted((ROOT / "examples").glob("*.py")):
        assert f"`{script.name}`" in page, script.name


def test_every_page_is_in_the_navigation():
    config = (ROOT / "mkdocs.yml").read_text()
    pages = [
        path.relative_to(DOCS).as_posix()
        for path in DOCS.rglob("*.md")
        if "hooks" not in path.parts
    ]
    missing = [page for page in pages if f": {page}" not in config]
    assert not missing, missing


def test_mkdocs_build_is_strict_clean(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    if shutil.which("mkdocs") is None:
        pytest.skip("the mkdocs command is not installed")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "presets" / "index.html").is_file()
    api = (tmp_path / "site" / "api" / "models" / "index.html").read_text()
    assert "keras_refinenet.models.refinenet.RefineNet" in api
