"""python/notebook.ipynb runs top to bottom (its code cells in order, in one namespace)."""

import json
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebook.ipynb"


def test_the_notebook_runs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert len(code) >= 5
    namespace = {"__name__": "__notebook__"}
    for number, cell in enumerate(code, 1):
        source = "".join(cell["source"])
        exec(compile(source, f"{NOTEBOOK.name} cell {number}", "exec"), namespace)
    assert len(namespace["stash"]) == 6
    assert namespace["animals"].df.height == 100
