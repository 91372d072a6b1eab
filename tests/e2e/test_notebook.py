"""The walkthrough notebook executes top to bottom on a fresh repo and tells the story it says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "churn_walkthrough.ipynb"
FEATURE_REPO = Path(__file__).resolve().parents[2] / "feature_repo"


def text_outputs(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_the_notebook_is_committed_without_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)


@pytest.fixture(scope="module")
def executed(tmp_path_factory, monkeypatch_module):
    import nbformat
    from nbclient import NotebookClient

    work = tmp_path_factory.mktemp("walkthrough")
    monkeypatch_module.setenv("WALKTHROUGH_WORKDIR", str(work))
    monkeypatch_module.setenv("FEATURE_REPO_TEMPLATE", str(FEATURE_REPO))
    monkeypatch_module.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return notebook, work


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_the_notebook_runs_every_step_on_its_own_fresh_repo(executed):
    notebook, work = executed
    text = text_outputs(notebook)
    assert "leakage alarm: False" in text
    assert (work / "feature_repo" / "data" / "models" / "churn_model_v1.skops").is_file()
    assert not any(o.get("output_type") == "error"
                   for c in notebook.cells for o in c.get("outputs", []))


def test_the_notebook_shows_quarantined_rows_plots_and_an_unknown_customer(executed):
    notebook, _ = executed
    text = text_outputs(notebook)
    images = sum("image/png" in o.get("data", {})
                 for c in notebook.cells for o in c.get("outputs", []))
    assert "naive_timestamp" in text and "accepted=0" in text  # re-ingest adds nothing
    assert images >= 6  # decay curves, signal rates, ROC, PR, calibration, lift
    assert "unknown customer" in text and "churn_probability" in text


def test_the_notebook_ingests_a_warehouse_export_and_plots_realized_performance(executed):
    notebook, work = executed
    text = text_outputs(notebook)
    own = next(c for c in notebook.cells if "warehouse_export.csv" in "".join(c.source))
    summary = "".join(o.get("text", "") for o in own.outputs)
    assert "rejected=0" in summary and "customers, no plan column" in summary
    assert "monitor alarms:" in text
    scores = sorted((work / "daily_repo" / "data" / "scores").glob("date=*/scores.parquet"))
    assert len(scores) == 8  # one snapshot a week
    images = sum("image/png" in o.get("data", {})
                 for c in notebook.cells for o in c.get("outputs", []))
    assert images >= 7  # ... and the realized-performance series
