"""MkDocs hooks: pages generated from the code at build time.

- `presets.md`: the `<!-- preset-table -->` marker becomes a table built
  from `keras_refinenet.models.presets.PRESETS`.
- `benchmarks.md`, `changelog.md`, `contributing.md`, `architecture.md`:
  copies of `benchmarks/README.md` and the top-level Markdown files (links
  to files outside the site become code spans).
- `api/*.md`: one API reference page per package, with a mkdocstrings
  `::: module` block for every module, so new modules appear by themselves.
- `training.md`, `deployment.md`, `weights.md`: a placeholder if the page
  is not written yet, so the navigation always builds.
"""

import ast
import pathlib
import re

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
PRESET_TABLE_MARKER = "<!-- preset-table -->"
PRESET_COLUMNS = (
    "preset",
    "architecture",
    "backbone",
    "classes",
    "dataset",
    "weights",
    "reported mIoU",
)
# Site page -> file outside docs/ copied into it.
COPIED_PAGES = {
    "benchmarks.md": "benchmarks/README.md",
    "changelog.md": "CHANGELOG.md",
    "contributing.md": "CONTRIBUTING.md",
    "architecture.md": "ARCHITECTURE.md",
}
PLACEHOLDER_PAGES = {
    "training.md": "Training",
    "deployment.md": "Inference and deployment",
    "weights.md": "Weights",
}
PACKAGE = "keras_refinenet"
PACKAGE_DIR = REPO_ROOT / PACKAGE
# API page -> (title, modules or packages it documents, intro if the
# package has no docstring).
API_PAGES = {
    "keras_refinenet": (
        "keras_refinenet",
        [
            PACKAGE,
            "serving",
            "constants",
            "labels",
            "refinenet_release",
            "backend_support",
            "lazy_imports",
            "registration",
        ],
        None,
    ),
    "layers": ("keras_refinenet.layers", ["layers"], None),
    "models": (
        "keras_refinenet.models",
        ["models"],
        "The RefineNet keras-hub family (backbone, task, preprocessor), "
        "image encoders, the preset registry and preset I/O.",
    ),
    "data": ("keras_refinenet.data", ["data"], None),
    "training": ("keras_refinenet.training", ["training"], None),
    "evaluation": ("keras_refinenet.evaluation", ["evaluation"], None),
    "inference": (
        "keras_refinenet.inference",
        ["inference"],
        "Prediction at any resolution (tiling, multi-scale and flip "
        "test-time augmentation) and visualisation.",
    ),
    "export": (
        "keras_refinenet.export",
        ["export"],
        "SavedModel export for TensorFlow Serving; the client helpers are "
        "in `keras_refinenet.serving`.",
    ),
    "convert": (
        "keras_refinenet.convert",
        ["convert"],
        "Conversion of the authors' published checkpoints.",
    ),
    "cli": (
        "keras_refinenet.cli",
        ["cli"],
        "The `keras-refinenet` command line; each module is a subcommand.",
    ),
}
SKIPPED_MODULES = ("keras_refinenet.version",)
RELATIVE_LINK = re.compile(r"\[([^\]]+)\]\((?!https?://|#|mailto:)([^)]+)\)")


def _architecture(config):
    cascades = config.get("num_cascades", 4)
    scales = config.get("input_scales") or [1.0]
    light = (
        config.get("adaptive_units") == 0 and config.get("output_units") == 0
    )
    name = "Light-Weight RefineNet" if light else "RefineNet"
    parts = [f"{cascades}-cascaded {name}"]
    if len(scales) > 1:
        parts.append(f"{len(scales)}-scale {tuple(scales)}")
    return ", ".join(parts)


def _weights(metadata):
    weights = metadata.get("weights")
    if not weights:
        return "none (architecture only)"
    text = f"`{weights['how_to_get']}`"
    if weights.get("source"):
        text = f"[{weights['format']}]({weights['source']}): {text}"
    return text


def _cell(value):
    return str(value).replace("|", "\\|").replace("\n", " ")


def preset_rows(presets):
    """One dict per preset, with the `PRESET_COLUMNS` keys, in order.

    Args:
        presets: a registry like `keras_refinenet.models.presets.PRESETS`.

    Returns:
        A list of dicts of strings.
    """
    rows = []
    for name, preset in presets.items():
        metadata, config = preset["metadata"], preset["config"]
        miou = metadata.get("reported_miou")
        rows.append(
            {
                "preset": f"`{name}`",
                "architecture": _architecture(config),
                "backbone": metadata.get("backbone") or "",
                "classes": str(config.get("num_classes", "-")),
                "dataset": metadata.get("dataset") or "-",
                "weights": _weights(metadata),
                "reported mIoU": "-" if miou is None else f"{miou}",
            }
        )
    return rows


def preset_table(presets):
    """The Markdown table of a preset registry, plus the descriptions.

    Args:
        presets: a registry like `keras_refinenet.models.presets.PRESETS`.

    Returns:
        Markdown text.
    """
    lines = [
        "| " + " | ".join(PRESET_COLUMNS) + " |",
        "| " + " | ".join("---" for _ in PRESET_COLUMNS) + " |",
    ]
    for row in preset_rows(presets):
        cells = (_cell(row[column]) for column in PRESET_COLUMNS)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("### Descriptions")
    lines.append("")
    for name, preset in presets.items():
        metadata = preset["metadata"]
        line = f"- `{name}`: {metadata.get('description', '')}"
        note = (metadata.get("weights") or {}).get("note")
        if note:
            line += f" *Note:* {note}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def render_presets_page(markdown, presets=None):
    """Replaces the preset-table marker of `presets.md`.

    Args:
        markdown: the page source.
        presets: the registry; default: the installed package's.

    Returns:
        The page with the generated table.
    """
    if PRESET_TABLE_MARKER not in markdown:
        raise ValueError(
            "docs/presets.md must hold the preset-table marker. "
            f"Received: a page without {PRESET_TABLE_MARKER!r}"
        )
    if presets is None:
        from keras_refinenet.models.presets import PRESETS as presets
    return markdown.replace(PRESET_TABLE_MARKER, preset_table(presets))


def copied_markdown(relative_path):
    """A repository file for the site, with its relative links (which
    point outside the site) turned into code spans.

    Args:
        relative_path: path from the repository root, e.g. `CHANGELOG.md`.

    Returns:
        Markdown text; a stub if the file does not exist yet.
    """
    source = REPO_ROOT / relative_path
    if not source.is_file():
        return f"# {relative_path}\n\nNot written yet.\n"
    folder = pathlib.PurePosixPath(relative_path).parent

    def unlink(match):
        text, target = match.group(1), match.group(2)
        return f"{text} (`{(folder / target).as_posix()}`)"

    return RELATIVE_LINK.sub(unlink, source.read_text())


def _module_name(path):
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_private(path):
    return any(part.startswith("_") for part in path.stem.split(".")) and (
        path.name != "__init__.py"
    )


def api_modules(entry):
    """Dotted module names documented for one `API_PAGES` entry.

    Args:
        entry: `PACKAGE` itself, a subpackage name (every module in it) or
            a top-level module name.

    Returns:
        A sorted list of module names; a package's `__init__` first.
    """
    if entry == PACKAGE:
        return [PACKAGE]
    path = PACKAGE_DIR / entry
    if path.with_suffix(".py").is_file():
        return [f"{PACKAGE}.{entry}"]
    modules = [
        _module_name(module)
        for module in sorted(path.rglob("*.py"))
        if not _is_private(module)
    ]
    return [
        name
        for name in sorted(modules, key=lambda name: (name.count("."), name))
        if name not in SKIPPED_MODULES
    ]


def _module_path(module):
    path = REPO_ROOT / pathlib.Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _docstring(module):
    return ast.get_docstring(ast.parse(_module_path(module).read_text()))


def package_exports(package):
    """Names a package `__init__` imports from its modules, in order.

    Args:
        package: dotted package name, e.g. `"keras_refinenet.layers"`.

    Returns:
        A list of `(name, defining_module)`; modules imported whole (such
        as `keras_refinenet.layers`) and private names are left out.
    """
    tree = ast.parse(_module_path(package).read_text())
    exports = []
    # Lazy packages list their exports under `if TYPE_CHECKING:`.
    nodes = [
        statement
        for node in tree.body
        for statement in (node.body if isinstance(node, ast.If) else [node])
    ]
    for node in nodes:
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        if not node.module.startswith(PACKAGE) or node.module.endswith(
            ".version"
        ):
            continue
        for alias in node.names:
            name = alias.asname or alias.name
            submodule = REPO_ROOT / node.module.replace(".", "/") / name
            if submodule.is_dir() or submodule.with_suffix(".py").is_file():
                continue
            if not name.startswith("_"):
                exports.append((name, node.module))
    return exports


def documented_names(module):
    """Public functions and classes with a docstring defined in a module.

    These are the names mkdocstrings renders (and autorefs can link to).

    Args:
        module: dotted module name.

    Returns:
        A set of names.
    """
    tree = ast.parse(_module_path(module).read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
        and not node.name.startswith("_")
        and ast.get_docstring(node)
    }


def _ordered(modules, exports):
    first = []
    for _, module in exports:
        if module in modules and module not in first:
            first.append(module)
    return first + [module for module in modules if module not in first]


def api_page(page):
    """The Markdown of one generated API reference page.

    Args:
        page: a key of `API_PAGES`.

    Returns:
        Markdown: the package summary, its exported names (linked) and a
        `::: module` block per module.
    """
    title, entries, intro = API_PAGES[page]
    modules = [module for entry in entries for module in api_modules(entry)]
    package = (
        modules[0] if _module_path(modules[0]).name == "__init__.py" else None
    )
    exports = package_exports(package) if package else []
    summary = (package and _docstring(package)) or intro or ""
    lines = [f"# `{title}`", "", summary.split("\n\n")[0], ""]
    if exports:
        lines += [f"Exported by `{package}`:", ""]
        lines += [
            f"- [`{name}`][{module}.{name}] (`{module}`)"
            if name in documented_names(module)
            else f"- `{name}` (`{module}`)"
            for name, module in exports
        ]
        lines.append("")
    documented = [module for module in modules if module != package]
    for module in _ordered(documented, exports):
        lines += [f"::: {module}", ""]
    return "\n".join(lines)


def on_files(files, config):
    from mkdocs.structure.files import File

    for page, source in COPIED_PAGES.items():
        files.append(
            File.generated(config, page, content=copied_markdown(source))
        )
    for page in API_PAGES:
        files.append(
            File.generated(config, f"api/{page}.md", content=api_page(page))
        )
    for page, title in PLACEHOLDER_PAGES.items():
        if files.get_file_from_path(page) is None:
            files.append(
                File.generated(
                    config,
                    page,
                    content=f"# {title}\n\nThis page is being written.\n",
                )
            )
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "presets.md":
        return render_presets_page(markdown)
    return markdown
