#!/usr/bin/env python3
"""Builds notebooks/README.ipynb from examples/readme.rs: one code cell per section.

The example is the source: its items (uses, types, functions) become the first code cell,
after the evcxr `:dep` lines; each `// ----- Title -----` section of `main` becomes a heading
and a code cell. A section under `#[cfg(...)]` is emitted without the attribute and its
block braces (the kernel builds hashstash with those features on). `tests/notebook.rs` checks
that the notebook's code and the example have not drifted apart; `notebooks/run.sh` builds
and executes the notebook with the evcxr Jupyter kernel.

Usage: python3 notebooks/build.py [OUT.ipynb]
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "readme.rs"
SECTION = re.compile(r"^\s*// ----- (.+) -----\s*$")
MAIN = "fn main() -> Result<(), Box<dyn std::error::Error>> {"
DEPS = [
    ':dep hashstash = { path = "..", features = ["sql", "dataframe"] }',
    ':dep serde = { version = "1", features = ["derive"] }',
    ":dep serde_json = \"1\"",
]


def sections(source):
    """(title, lines) pairs: the items before main first (title None), then each section."""
    lines = source.splitlines()
    start = lines.index(MAIN)
    items = [l for l in lines[:start] if not l.startswith("//!")]
    out = [(None, items)]
    body = lines[start + 1 :]
    # The end of main: its `Ok(())` and closing brace.
    while body and body[-1].strip() in ("}", ""):
        body.pop()
    if body and body[-1].strip() == "Ok(())":
        body.pop()
    for line in unwrap(dedent(body)):
        m = SECTION.match(line)
        if m:
            out.append((m.group(1), []))
        elif len(out) > 1:
            out[-1][1].append(line)
    return [(title, trim(code)) for title, code in out]


def dedent(lines):
    width = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return [l[width:] for l in lines]


def unwrap(lines):
    """Drops `#[cfg(...)]` and the braces of the block it guards, dedenting the block."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("#[cfg(") and i + 1 < len(lines) and lines[i + 1].strip() == "{":
            indent = len(lines[i + 1]) - len(lines[i + 1].lstrip())
            end = next(
                j
                for j in range(i + 2, len(lines))
                if lines[j].strip() == "}" and len(lines[j]) - len(lines[j].lstrip()) == indent
            )
            out.extend(dedent(lines[i + 2 : end]))
            i = end + 1
        else:
            out.append(line)
            i += 1
    return out


def trim(lines):
    """A cell without the blank lines at either end."""
    lines = list(lines)
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def cell(kind, text, **extra):
    source = text.splitlines(keepends=True)
    c = {"cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        c.update({"execution_count": None, "outputs": []})
    c.update(extra)
    return c


def notebook(source):
    parts = sections(source)
    cells = [
        cell(
            "markdown",
            "# hashstash: the README walk-through\n\n"
            "The cells of `examples/readme.rs`, run by the evcxr Jupyter kernel "
            "(`notebooks/run.sh` builds this notebook from the example and executes it; "
            "a test checks that the two say the same).",
        ),
        cell("code", "\n".join(DEPS + [""] + parts[0][1])),
    ]
    for title, code in parts[1:]:
        cells.append(cell("markdown", f"## {title}"))
        cells.append(cell("code", "\n".join(code)))
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Rust", "language": "rust", "name": "rust"},
            "language_info": {
                "codemirror_mode": "rust",
                "file_extension": ".rs",
                "mimetype": "text/rust",
                "name": "Rust",
                "pygment_lexer": "rust",
                "version": "",
            },
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "notebooks" / "README.ipynb"
    nb = notebook(EXAMPLE.read_text())
    for i, c in enumerate(nb["cells"]):
        c["id"] = f"cell-{i}"
    out.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out} ({len(nb['cells'])} cells)")


if __name__ == "__main__":
    main()
