"""The course's notebooks (docs/notebooks/): one per chapter in each language, kept without
outputs, and each runs from top to bottom in a fresh Jupyter kernel on a tiny budget
(GANFORGE_NOTEBOOK_STEPS) with no error, showing its results inline: images among its outputs,
the runs' sample grids among them."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))
CHAPTERS = sorted((ROOT / "docs" / "course").glob("*.es.md"))
LANGUAGES = ("es", "en")
STEPS = "12"  # iterations of each training run in the notebooks: seconds in all


def chapter_number(page: Path) -> int:
    """The N of a chapter page's title, '# N. ...'."""
    title = page.read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"# (\d+)\. ", title)
    assert match, f"{page.name}: the title does not start with its chapter number"
    return int(match[1])


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_every_chapter_has_a_notebook_in_each_language():
    found = {
        (notebook.metadata["ganforge"]["chapter"], notebook.metadata["ganforge"]["language"])
        for notebook in map(read, NOTEBOOKS)
    }
    for page in CHAPTERS:
        for language in LANGUAGES:
            assert (chapter_number(page), language) in found, (page.name, language)
    for path in NOTEBOOKS:  # NN-title.LANG.ipynb: the site publishes each in its language
        language = read(path).metadata["ganforge"]["language"]
        assert path.name.endswith(f".{language}.ipynb"), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebooks_are_kept_without_outputs(path):
    """Outputs are made when a notebook runs; kept ones would go stale and bloat the diffs."""
    notebook = read(path)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_and_shows_its_results_inline(path, tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_NOTEBOOK_STEPS", STEPS)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel: one thread, like the suite
    notebook = read(path)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=600,
        resources={"metadata": {"path": str(tmp_path)}},  # its runs/ go to tmp_path
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on an error
    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 3, f"{path.name} shows {len(images)} images"
    # a run at the end of a cell shows as its samples (Run._repr_png_)
    shown_runs = [
        output
        for output in images
        if output.output_type == "execute_result" and "Run(" in output.data["text/plain"]
    ]
    assert shown_runs, f"{path.name} shows no run's samples"
    assert (tmp_path / "runs").is_dir()
