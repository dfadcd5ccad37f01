"""The one registry (complete on lookup) and the one validation module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ncollapse
from ncollapse.errors import NCollapseError

SRC = str(Path(ncollapse.__file__).resolve().parents[1])


def _fresh(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_registries_complete_after_import_ncollapse_in_a_fresh_interpreter():
    # failed before: ncmc_cosine / multicenter were registered only by importing ncollapse.methods
    r = _fresh(
        "import sys, ncollapse\n"
        "assert 'torch' not in sys.modules, 'import ncollapse must stay cheap'\n"
        "from ncollapse.losses import create_loss\n"
        "from ncollapse.models import create_head\n"
        "print(type(create_loss('ncmc_cosine')).__name__)\n"
        "print(type(create_head('multicenter', 64, 3, mode='al', f=2)).__name__)\n"
        "from ncollapse.methods import METHODS\n"
        "print(sorted(METHODS.names()))\n"
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == "NCMCCosineLoss" and lines[1] == "MultiCenterHead"
    assert "gbbn" in lines[2]


def test_registry_lists_every_builtin_name():
    from ncollapse.losses import loss_names
    from ncollapse.models import head_names

    assert {"ncmc_cosine", "loss_p", "allnc", "ce", "ldam"} <= set(loss_names())
    assert {"multicenter", "bilateral", "linear", "etf"} <= set(head_names())


def test_registry_shim_is_the_same_class():
    from ncollapse.models import Registry as R1
    from ncollapse.models.registry import Registry as R2
    from ncollapse.registry import Registry

    assert R1 is Registry and R2 is Registry


def test_registry_messages_name_the_value_and_the_fix():
    from ncollapse.registry import Registry

    reg = Registry("widget")

    @reg.register("round")
    def make(radius: float = 1.0):
        return radius

    with pytest.raises(NCollapseError, match=r"unknown widget 'rond' \(did you mean 'round'\?\)"):
        reg.get("rond")
    with pytest.raises(NCollapseError, match=r"unknown option 'r' .* valid options: radius=1.0"):
        reg.create("round", r=2)
    assert "round" in reg and list(reg) == ["round"]


def test_validation_is_one_module_with_reexports():
    from ncollapse import errors, validation
    from ncollapse.geometry import _validate

    for name in ("check_counts", "check_positive", "check_finite"):
        assert getattr(errors, name) is getattr(validation, name)
    assert _validate.check_int is validation.check_int


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda v: v.check_counts([3, 0, 1]), r"counts\[1\]=0 is not positive.*drop empty"),
        (lambda v: v.check_positive(-1.0, "lr"), r"lr=-1 must be > 0"),
        (lambda v: v.check_finite(np.array([1.0, np.nan]), "H"), r"H has 1 NaN/inf .*index \(1,\)"),
        (lambda v: v.check_int(2.5, "width", 1), r"width=2.5 is not an integer"),
        (lambda v: v.check_int(0, "depth", 1, fix="use depth >= 1"), r"depth=0 .* >= 1; use"),
        (lambda v: v.check_choice("x", "mode", ("al", "cal")), r"mode='x' .* al, cal"),
    ],
)
def test_validation_messages(call, match):
    from ncollapse import validation

    with pytest.raises(NCollapseError, match=match):
        call(validation)


def test_check_finite_on_tensors():
    import torch

    from ncollapse.validation import check_finite

    check_finite(torch.ones(3), "x")
    with pytest.raises(
        NCollapseError, match=r"x has 1 NaN/inf value\(s\), first at index \(0, 1\)"
    ):
        check_finite(torch.tensor([[1.0, float("inf")]]), "x")


def test_no_private_check_helpers_imported_across_packages():
    import re

    pkg = Path(ncollapse.__file__).parent
    bad = []
    for f in pkg.rglob("*.py"):
        for m in re.finditer(
            r"from ncollapse\.([\w.]+) import ([^\n]*(?:\([^)]*\))?)", f.read_text()
        ):
            src_pkg = m.group(1).split(".")[0]
            own_pkg = f.relative_to(pkg).parts[0].removesuffix(".py")
            if src_pkg != own_pkg and re.search(r"\b_check_\w+", m.group(2)):
                bad.append(f"{f.relative_to(pkg)}: {m.group(0)[:80]}")
    assert not bad, bad
