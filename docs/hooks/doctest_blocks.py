"""Griffe extension: doctest examples rendered as code blocks.

The package's docstrings write `Example:` followed by unindented `>>>`
lines, which Markdown would otherwise render as running text. Every run of
lines starting with `>>>` (with their `...` continuations and the expected
output up to the next blank line) is wrapped in a `pycon` fence.
"""

import griffe

PROMPT = ">>>"
FENCE = "```"


def fence_doctests(text):
    """Wraps each doctest block of `text` in a fenced `pycon` block.

    Args:
        text: a docstring.

    Returns:
        The docstring with fenced doctest blocks.
    """
    lines = text.splitlines()
    out = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.lstrip().startswith(PROMPT):
            out.append(line)
            index += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        out.append(f"{indent}{FENCE}pycon")
        while index < len(lines) and lines[index].strip():
            out.append(lines[index])
            index += 1
        out.append(f"{indent}{FENCE}")
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    """Fences the doctest examples of every docstring."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring and PROMPT in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
