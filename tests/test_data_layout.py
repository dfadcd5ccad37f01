"""The layout of ncollapse.data: every module imports on its own, no import cycle (not even through
function-level imports), the dataset registry sits on the shared Registry with aliases and
capabilities, and no code outside the registry branches on a dataset's name."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ncollapse.data as data
from ncollapse.data import (
    DATASETS,
    DatasetSpec,
    dataset_info,
    list_datasets,
    load_dataset,
    register_dataset,
)
from ncollapse.errors import NCollapseError

SRC = Path(data.__file__).resolve().parents[1]  # .../src/ncollapse
DATA = SRC / "data"


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(DATA.rglob("*.py")):
        rel = p.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def test_each_data_module_imports_fresh_in_a_subprocess():
    from concurrent.futures import ThreadPoolExecutor

    env = {**os.environ, "PYTHONPATH": str(SRC.parent), "OMP_NUM_THREADS": "1"}

    def imp(m):
        code = f"import importlib; importlib.import_module({m!r})"
        return m, subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
        )

    mods = list(_modules())
    assert len(mods) >= 15
    with ThreadPoolExecutor(max_workers=2) as ex:  # a fresh interpreter per module
        for m, proc in ex.map(imp, mods):
            assert proc.returncode == 0, f"import {m} failed:\n{proc.stderr[-2000:]}"


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    """Every ncollapse.data module that ``module`` imports, at any depth of the file (function-level
    imports included, since those still form a cycle of responsibilities)."""
    tree = ast.parse(path.read_text())
    pkg = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in known:
                    out.add(sub)
                elif base in known:
                    out.add(base)
    out.discard(module)
    return out


def test_no_import_cycle_among_data_modules():
    mods = _modules()
    known = set(mods)
    graph = {m: _imports(p, m, known) for m, p in mods.items()}
    # the package __init__ and the compatibility module re-export everything: nothing may use them
    for m, deps in graph.items():
        if m not in ("ncollapse.data", "ncollapse.data.datasets"):
            assert "ncollapse.data" not in deps, f"{m} imports the package ncollapse.data"
            assert "ncollapse.data.datasets" not in deps, f"{m} imports ncollapse.data.datasets"
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, m, d]))
            if d not in state:
                visit(d, [*stack, m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    # the split is real: the readers do not reach the registry, the container reaches nothing
    assert not any(
        d.endswith(".registry") for m, ds in graph.items() if ".readers" in m for d in ds
    )
    assert graph["ncollapse.data.base"] <= {"ncollapse.data.longtail"}


def test_registry_is_the_shared_registry_with_aliases_and_capabilities():
    from ncollapse.models.registry import Registry

    assert isinstance(DATASETS, Registry)
    assert list_datasets()[:3] == ["fashion-mnist", "mnist", "emnist"]  # registration order
    for alias, name in [("FMNIST", "fashion-mnist"), ("cifar-10", "cifar10"), ("csv", "csv-list")]:
        assert DATASETS[alias] is DATASETS.get(name) is DATASETS.get(alias)
    spec, opts = DATASETS.resolve("emnist-letters")
    assert spec.name == "emnist" and opts == {"variant": "letters"}
    assert DATASETS.meta("imagenet-lt")["lazy"] is True
    assert DATASETS.meta("cifar10")["lazy"] is False
    assert DATASETS.meta("digits")["packaged"] and not DATASETS.meta("mnist")["packaged"]
    assert DATASETS.meta("csv-list")["needs_root"] and not DATASETS.meta("svhn")["needs_root"]
    assert DATASETS.meta("svhn")["splits"] == ("train", "test", "extra")
    ds = DATASETS.create("digits", split="test")  # the registered factory reads the split
    assert ds.split == "test" and len(ds) == len(load_dataset("sklearn-digits", "test"))
    with pytest.raises(NCollapseError, match="already registered"):
        register_dataset(DatasetSpec("digits", "x", 2, ("train",), "", "", lambda *a, **k: None))
    with pytest.raises(NCollapseError, match="unknown dataset 'cifar11'"):
        DATASETS.resolve("cifar11")
    # reader options are checked against the spec, not silently dropped
    assert DATASETS.meta("imagenet-lt")["options"][:2] == ("image_root", "num_classes")
    with pytest.raises(NCollapseError, match="unknown option 'size' for dataset 'digits'.*lazy"):
        load_dataset("digits", size=8)
    with pytest.raises(
        NCollapseError, match="unknown option 'sise'.*image_root, num_classes, size"
    ):
        load_dataset("imagenet-lt", root=SRC, sise=8)
    assert dataset_info("emnist", variant="letters")["num_classes"] == 26
    with pytest.raises(NCollapseError, match="unknown option 'variant' for dataset 'mnist'"):
        dataset_info("mnist", variant="letters")


def test_no_code_branches_on_a_dataset_name():
    """Capabilities come from the registry and the dataset objects: a comparison with a
    registered dataset name anywhere in the package (outside the registry table) is a defect."""
    names = set(list_datasets()) | set(DATASETS.aliases())
    found = []
    for p in sorted(SRC.rglob("*.py")):
        if p == DATA / "registry.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            for c in [node.left, *node.comparators]:
                elts = c.elts if isinstance(c, (ast.Tuple, ast.List, ast.Set)) else [c]
                for e in elts:
                    if isinstance(e, ast.Constant) and e.value in names:
                        found.append(f"{p.relative_to(SRC)}:{node.lineno}: {e.value!r}")
    assert not found, "branches on dataset names: " + "; ".join(found)
