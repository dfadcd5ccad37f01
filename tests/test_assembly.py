"""One decision, one place: each decision the trainer and the commands share is made by one
library function (issue 9). Each test here failed on the code before the assembly layer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ncollapse.cli import main
from ncollapse.errors import NCollapseError


def _json(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out)


# ------------------------------------------------------------------ NCMC class-aware center counts
def test_ncmc_counts_same_in_training_head_and_command(capsys):
    import ncollapse.methods as M
    from ncollapse.models import create_head

    counts = [20, 50, 100, 200, 500]
    r = _json(capsys, ["geometry", "multicenter", "--counts", "20,50,100,200,500", "--f", "4",
                       "--json"])  # fmt: skip
    head = create_head("multicenter", 64, 5, mode="cal", f=4, counts=counts)
    trained = M.center_counts("cal", 5, 4, counts=counts).tolist()
    assert r["f_counts"] == trained == [9, 4, 3, 2, 2]
    assert np.bincount(head.center_class.cpu().numpy()).tolist() == trained


def test_ncmc_rank_rule_is_monotone_in_class_size():
    from ncollapse.geometry import class_aware_counts

    n = np.array([10, 600, 30, 300, 60, 120])
    fk = class_aware_counts(n, 5)
    assert fk.sum() == 30
    # a smaller class never gets fewer centers than a larger one (GCR, NCMC Sec. 3.1)
    for i in range(n.size):
        for j in range(n.size):
            if n[i] < n[j]:
                assert fk[i] >= fk[j], (n[i], fk[i], n[j], fk[j])
    assert fk.tolist() == [13, 2, 7, 2, 3, 3]
    # the positional reading (the paper's worked example) is still available by name
    assert class_aware_counts([1, 3, 3], 3, order="positional").tolist() == [4, 4, 1]
    with pytest.raises(NCollapseError, match="order='size' is unknown"):
        class_aware_counts(n, 5, order="size")


def test_ncmc_rank_rule_ignores_class_numbering():
    from ncollapse.geometry import class_aware_counts

    rng = np.random.default_rng(1)
    n = rng.integers(1, 1000, size=12)
    perm = rng.permutation(12)
    assert class_aware_counts(n[perm], 7).tolist() == class_aware_counts(n, 7)[perm].tolist()
