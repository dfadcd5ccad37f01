"""docs/measure.md cannot rot: its Python blocks run, in order, in one namespace, and print what the
page shows (the table's rows, the verdicts' wording; numbers may differ across CPUs)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "measure.md"


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _has_lightning() -> bool:
    return any(importlib.util.find_spec(m) for m in ("lightning", "pytorch_lightning"))


@pytest.mark.slow
def test_measure_page_runs(tmp_path, monkeypatch):
    text = DOC.read_text()
    code = _blocks(text, "python")
    assert len(code) >= 6
    monkeypatch.chdir(tmp_path)  # the page saves its plot in the working directory
    ns: dict = {"__name__": "__docs__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in code:
            if "lightning" in block and not _has_lightning():
                continue  # the optional extra is absent (it is installed by `make test`)
            if "torchmetrics" in block and importlib.util.find_spec("torchmetrics") is None:
                continue
            exec(compile(block, str(DOC), "exec"), ns)
    printed = out.getvalue()
    assert (tmp_path / "measure_digits.png").stat().st_size > 1000
    shown = next(b for b in _blocks(text, "text") if b.startswith("neural collapse, K="))
    # every row label of the documented table is printed
    rows = re.findall(r"│ ([^│]+?)\s+│\s+[-\d.]", shown)
    assert len(rows) >= 10
    for label in rows:
        assert label in printed, label
    # every documented verdict starts the same way
    for line in re.findall(r"^- ([^:]+):", shown, flags=re.M):
        assert f"- {line}:" in printed, line
    assert "features: input of `fc` (nn.Linear 64 -> 10)" in printed
    assert ns["result"].layer == "fc"
