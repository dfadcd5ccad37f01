"""NCMC's and AllNC's tables as catalogue entries: each is a sweep of labelled runs and its claims.

Every entry here has three scales. ``here`` runs on Fashion-MNIST-LT (rho = 100 unless the table
varies it) with the packaged 8-epoch recipes (``fmnist_lt_*``: the same small CNN and schedule for
every method), on 2 CPU cores; ``smoke`` (CI) swaps in scikit-learn's digits, an MLP and one
epoch; ``paper`` points at the CIFAR recipes under ``recipes/methods/paper/`` where they exist.
Tables and claims (Yan et al., NeurIPS 2024, "Neural Collapse to Multiple Centers for Imbalanced
Data"; Zhang et al., TKDE 2025, arXiv 2408.07253, "All-around Neural Collapse"):

* ``ncmc-table1``: CE / SETF / CAL with and without mixup over the imbalance (Table 1): CAL is at
  least as good as CE and SETF in almost every imbalanced setting.
* ``ncmc-table3``: CE, LDAM-DRW, KCL, SETF, ARB-Loss and CAL (Table 3): CAL is the best.
* ``ncmc-table4``: Loss P without and with mixup against CAL (Table 4): Loss P is worse than the
  cosine loss and is hurt by mixup.
* ``ncmc-table6``: CAL over a grid of (f, theta), with the norm regulariser summed over the batch
  (the paper's per-sample loss) and averaged (Table 6, and the project's CAL question): theta inside
  (0, pi/4) is best, and a larger f helps under heavy imbalance.
* ``ncmc-table7``: CAL against RBL with and without post-hoc logit adjustment (Table 7): the
  adjustment improves RBL, and RBL with it beats CAL in most settings.
* ``allnc-ablation``: AllNC with each of HyCon, P2P and GBBN switched off (its ablation): every
  part contributes (the full method is best).

Results are means over seeds (three for the comparison tables at ``here``, one for the grids).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ncollapse.errors import NCollapseError
from ncollapse.reproduce.catalogue import register_reproduction
from ncollapse.reproduce.comparison import ALLNC_PAPER, NCMC_PAPER, SMOKE_SET, accuracy_report
from ncollapse.reproduce.deepnet import check_scale
from ncollapse.reproduce.report import Report, entry_out_dir

__all__ = ["TABLES", "TableEntry"]

CE, LDAM, SETF = "fmnist_lt_ce", "fmnist_lt_ldam_drw", "fmnist_lt_setf"
CAL, LOSS_P, ALLNC = "methods/fmnist_lt_cal", "methods/fmnist_lt_loss_p", "methods/fmnist_lt_allnc"


@dataclass(frozen=True)
class TableEntry:
    """One table: its runs (``{"name", "recipe", dotted overrides...}``) per scale and its claims."""

    id: str
    paper: str
    claim: str
    runs: Callable[[str], list[dict[str, Any]]]
    seeds: dict[str, list[int]]
    scaled: str
    checks: Callable[[Report, dict], None]
    paper_note: str = "no paper-scale recipe: the table's data sets are not on this machine"
    #: False for tables whose point is the backbone (Tables 2, 5): no Fashion-MNIST analog
    here: bool = True
    data_paper: str = "CIFAR"


def _spec(t: TableEntry, scale: str) -> dict[str, Any]:
    runs = t.runs(scale)
    if scale == "smoke":
        runs = runs[:4]  # the plumbing, not the whole grid
    base = {"run.tensorboard": False, **(SMOKE_SET if scale == "smoke" else {})}
    return {"name": t.id, "set": base, "runs": runs, "seeds": t.seeds.get(scale, [0])}


def _run_table(t: TableEntry, out_dir, scale, executor, workers) -> dict:
    scale = check_scale(scale)
    out = entry_out_dir(t.id, scale, out_dir)
    scaled = {"smoke": "smoke: digits, an MLP of width 32, one epoch, the first four runs",
              "here": t.scaled, "paper": "the paper's data, backbone and schedule"}[scale]  # fmt: skip
    if scale == "paper" and not t.runs("paper"):
        raise NCollapseError(f"{t.id} has no paper scale: {t.paper_note}; use --scale here")
    if scale == "here" and not t.here:
        raise NCollapseError(
            f"{t.id} has no here scale ({t.scaled}); run --scale paper where the data sets exist "
            "(ncollapse data list says where each is looked for), or --scale smoke"
        )
    head = f"**Paper:** {t.paper}\n\n**Claim:** {t.claim}"
    return accuracy_report(t.id, out, scale, scaled, head, t.claim, _spec(t, scale), t.checks,
                           executor=executor, workers=workers)  # fmt: skip


def _register(t: TableEntry) -> TableEntry:
    def recipe(
        out_dir=None, *, quick: bool = False, device=None, progress=None, scale: str | None = None,
        executor: str = "local", workers=None,
    ) -> dict:  # fmt: skip
        return _run_table(t, out_dir, scale or ("smoke" if quick else "here"), executor, workers)

    recipe.__name__ = f"reproduce_{t.id.replace('-', '_')}"
    recipe.__qualname__ = recipe.__name__
    register_reproduction(
        t.id,
        paper=t.paper,
        claim=t.claim,
        command=f"ncollapse reproduce {t.id} --scale {'here' if t.here else 'paper'} --workers 2",
        out_dir=f"outputs/reproduce/{t.id}/{'here' if t.here else 'paper'}",
        data=(
            ("Fashion-MNIST (here); " if t.here else "")
            + (t.data_paper + " (paper)" if t.runs("paper") else t.paper_note)
        ),
        runnable_here=t.here,
    )(recipe)
    return t


# ------------------------------------------------------------------------------------ checks


def _mean_finite(values) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else np.nan


def _bal(s: dict, m: str) -> float:
    return s[m]["balanced_acc"][0] if m in s else np.nan


def _at_least(rep: Report, s: dict, a: str, b: str, src: str, *, strict: bool = False,
              section: str = "ordering") -> None:  # fmt: skip
    """Check ``balanced acc(a) >= (or >) balanced acc(b)``, means over seeds."""
    if a not in s or b not in s:
        return
    x, y = _bal(s, a), _bal(s, b)
    ok = x > y if strict else x >= y
    rep.check(section, f"balanced acc: {a} {'>' if strict else '>='} {b}", f"{a} vs {b}",
              f"{'>' if strict else '>='} {y:.2f}", x, kind="bool", ok=bool(ok),
              source=src)  # fmt: skip


# ---------------------------------------------------------------------------------- entries


def _table1_runs(scale: str) -> list[dict]:
    if scale == "paper":
        return [{"name": f"{m} {'mixup' if mix else 'plain'} rho={r}",
                 "recipe": f"methods/paper/cifar100_resnet50_{m.lower()}{'_mixup' if mix else ''}"
                           f"_rho{r}"}
                for r in (50, 100, 200) for m in ("CE", "SETF", "CAL") for mix in (False, True)]  # fmt: skip
    out = []
    for r in (100, 50, 200):
        for m, rec in (("CAL", CAL), ("CE", CE), ("SETF", SETF)):
            for mix in (False, True):
                out.append({"name": f"{m} {'mixup' if mix else 'plain'} rho={r}", "recipe": rec,
                            "data.rho": r, "train.mixup_alpha": 1.0 if mix else 0.0})  # fmt: skip
    return out


def _table1_checks(rep: Report, s: dict) -> None:
    src = "NCMC Table 1"
    for r in (50, 100, 200):
        for mix in ("plain", "mixup"):
            for other in ("CE", "SETF"):
                _at_least(rep, s, f"CAL {mix} rho={r}", f"{other} {mix} rho={r}", src)


def _backbone_runs(datasets: tuple[str, ...]):
    """Tables 2 and 5: CE / SETF / CAL (trained with mixup, as NCMC's comparison tables) for
    ResNet-50 and DenseNet-BC over rho. ``smoke`` trains the first runs' heads and losses on digits
    (an MLP stands in for the backbone; CAL gets the projection its frame needs)."""

    def runs(scale: str) -> list[dict]:
        out = []
        for ds in datasets:
            for bb, bname in (("resnet50", "ResNet-50"), ("densenet_bc", "DenseNet-BC")):
                for r in (50, 100, 200):
                    for m in ("CE", "SETF", "CAL"):
                        run = {"name": f"{m} {ds} {bname} rho={r}",
                               "recipe": f"methods/paper/{ds}_{bb}_{m.lower()}_mixup_rho{r}"}  # fmt: skip
                        if scale == "smoke" and m == "CAL":
                            run["model.head_args.projection_dim"] = 256
                        out.append(run)
        if scale == "smoke":  # CE, SETF, CAL of the first setting
            out = out[:3]
        return out if scale in ("paper", "smoke") else []

    return runs


def _backbone_checks(rep: Report, s: dict) -> None:
    for name in s:
        if name.startswith("CAL "):
            setting = name[len("CAL ") :]
            for other in ("CE", "SETF"):
                _at_least(rep, s, name, f"{other} {setting}", "NCMC Tables 2 and 5")


def _backbone_entry(table: int, *datasets: tuple[str, str]) -> TableEntry:
    """NCMC Table 2 or 5: the backbone comparison on two data sets (``(name, display name)``)."""
    shown = [d for _, d in datasets]
    return TableEntry(
        f"ncmc-table{table}",
        NCMC_PAPER,
        "CAL is at least as good as CE and SETF with both ResNet-50 and DenseNet-BC on "
        f"{' and '.join(d + '-LT' for d in shown)} at every imbalance (Table {table}).",
        _backbone_runs(tuple(n for n, _ in datasets)),
        {"paper": [0, 1, 2]},
        "the table compares ImageNet-size backbones (ResNet-50, DenseNet-BC-150) that 2 CPU "
        "cores cannot train",
        _backbone_checks,
        here=False,
        data_paper=", ".join(shown),
    )


def _table3_runs(scale: str) -> list[dict]:
    if scale == "paper":
        return []
    return [
        {"name": "CAL", "recipe": CAL},
        {"name": "CE", "recipe": CE},
        {"name": "LDAM-DRW", "recipe": LDAM},
        {"name": "KCL", "recipe": CE, "loss.name": "kcl"},
        {"name": "SETF", "recipe": SETF},
        {"name": "ARB-Loss", "recipe": CE, "loss.name": "arb"},
    ]


def _table3_checks(rep: Report, s: dict) -> None:
    for other in ("CE", "LDAM-DRW", "KCL", "SETF", "ARB-Loss"):
        _at_least(rep, s, "CAL", other, "NCMC Table 3")


def _table4_runs(scale: str) -> list[dict]:
    if scale == "paper":
        return []
    return [
        {"name": "CAL", "recipe": CAL},
        {"name": "Loss P", "recipe": LOSS_P},
        {"name": "Loss P + mixup", "recipe": LOSS_P, "train.mixup_alpha": 1.0},
    ]


def _table4_checks(rep: Report, s: dict) -> None:
    src = "NCMC Table 4, Sec. 4.4"
    _at_least(rep, s, "CAL", "Loss P", src, strict=True)
    _at_least(rep, s, "Loss P", "Loss P + mixup", src, strict=True, section="mixup")


THETAS = (0.2, 0.5, 1.37)
FS = (10, 20, 40)


def _table6_runs(scale: str) -> list[dict]:
    if scale == "paper":
        return []
    # the frame needs d >= (f + 1) K: the recipe's projection (256) grows in steps of 64 for f = 40
    return [{"name": f"f={f} theta={th} norm={red}", "recipe": CAL, "model.head_args.f": f,
             "model.head_args.theta": th, "loss.params.norm_reduction": red,
             "model.head_args.projection_dim": max(256, 64 * math.ceil((f + 1) * 10 / 64))}
            for red in ("sum", "mean") for f in FS for th in THETAS]  # fmt: skip


def _table6_checks(rep: Report, s: dict) -> None:
    src = "NCMC Sec. 4.4, App. F.2, Table 6"
    for red in ("sum", "mean"):
        grid = {(f, th): _bal(s, f"f={f} theta={th} norm={red}") for f in FS for th in THETAS}
        if not any(np.isfinite(v) for v in grid.values()):
            continue
        best = max((k for k in grid if np.isfinite(grid[k])), key=lambda k: grid[k])
        # the grid's theta is Def. 3.2's; the paper's (0, pi/4) is read from w_k (paper_theta)
        paper = float(np.pi / 2 - best[1])
        rep.check("theta", f"the best theta, read from w_k (pi/2 - theta), lies in (0, pi/4) "
                  f"(norm {red})", f"norm={red}", "in (0, 0.785)", round(paper, 4), kind="bool",
                  ok=bool(0 < paper < np.pi / 4), source=src)  # fmt: skip
        inside = 0 < best[1] < np.pi / 4
        rep.check("theta", f"not graded: under Def. 3.2's reading the best theta "
                  f"{'lies' if inside else 'does not lie'} in (0, pi/4) (norm {red})",
                  f"norm={red}", "(0, 0.785)", best[1], kind="bool", ok=True,
                  source=src)  # fmt: skip
        by_f = {f: _mean_finite([grid[(f, th)] for th in THETAS]) for f in FS}
        rep.check("f", f"larger f is better under heavy imbalance (norm {red}, mean over theta)",
                  f"f={FS[-1]} vs f={FS[0]}", f">= {by_f[FS[0]]:.2f}", by_f[FS[-1]], kind="bool",
                  ok=bool(by_f[FS[-1]] >= by_f[FS[0]]), source=src)  # fmt: skip
    for f in FS:
        for th in THETAS:
            a, b = f"f={f} theta={th} norm=mean", f"f={f} theta={th} norm=sum"
            if a in s and b in s:
                rep.check("regulariser", "averaged vs summed norm regulariser (report only)",
                          f"f={f} theta={th}", f"sum: {_bal(s, b):.2f}", _bal(s, a), kind="bool",
                          ok=True, source="the project's CAL question")  # fmt: skip


def _table7_runs(scale: str) -> list[dict]:
    if scale == "paper":
        return []
    # RBL's training loss is not stated (its code is not public): balanced softmax (which already
    # removes the log prior) and plain CE (post-hoc adjustment as the only correction) are both run
    rbl = {"model.head": "rotated_etf", "model.head_args": {}, "loss.name": "balanced_softmax",
           "loss.params": {}}  # fmt: skip
    rbl_ce = {**rbl, "loss.name": "ce"}
    return [
        {"name": "CAL", "recipe": CAL},
        {"name": "RBL", "recipe": CE, **rbl},
        {"name": "RBL + PLA", "recipe": CE, **rbl, "eval.posthoc_tau": 1.0},
        {"name": "RBL (CE)", "recipe": CE, **rbl_ce},
        {"name": "RBL (CE) + PLA", "recipe": CE, **rbl_ce, "eval.posthoc_tau": 1.0},
    ]


def _table7_checks(rep: Report, s: dict) -> None:
    src = "NCMC Table 7, App. A.2"
    for loss in ("", " (CE)"):
        _at_least(rep, s, f"RBL{loss} + PLA", f"RBL{loss}", src, strict=True,
                  section="post-hoc adjustment")  # fmt: skip
        _at_least(rep, s, f"RBL{loss} + PLA", "CAL", src, strict=True)


def _ablation_runs(scale: str) -> list[dict]:
    if scale == "paper":
        return []
    return [
        {"name": "AllNC (full)", "recipe": ALLNC},
        {"name": "without HyCon", "recipe": ALLNC, "loss.params.hycon": False},
        {"name": "without P2P", "recipe": ALLNC, "loss.params.p2p": False},
        {
            "name": "without GBBN",
            "recipe": ALLNC,
            "method.name": "standard",
            "method.params": {},
            "model.head": "linear",
            "model.head_args": {},
        },  # fmt: skip
        {"name": "CE", "recipe": CE},
    ]


def _ablation_checks(rep: Report, s: dict) -> None:
    for other in ("without HyCon", "without P2P", "without GBBN", "CE"):
        _at_least(rep, s, "AllNC (full)", other, "AllNC ablation (reconstruction)", strict=True)


def _theta_runs(scale: str) -> list[dict]:
    if scale == "paper":
        return []
    from ncollapse.geometry import NCMC_THETA, PAPER_THETA

    longer = {"train.epochs": 12} if scale == "here" else {}
    return [
        {"name": "CAL, theta from w_k (default)", "recipe": CAL,
         "model.head_args.theta": NCMC_THETA, **longer},
        {"name": "CAL, theta as Def. 3.2", "recipe": CAL, "model.head_args.theta": PAPER_THETA,
         **longer},
        {"name": "SETF", "recipe": SETF, **longer},
        {"name": "CE", "recipe": CE, **longer},
        {"name": "CAL, theta from w_k, norm averaged", "recipe": CAL,
         "model.head_args.theta": NCMC_THETA, "loss.params.norm_reduction": "mean", **longer},
    ]  # fmt: skip


def _theta_checks(rep: Report, s: dict) -> None:
    src = "NCMC Tables 1-3 (CAL >= SETF > CE) and the project's CAL question"
    new, old = "CAL, theta from w_k (default)", "CAL, theta as Def. 3.2"
    _at_least(rep, s, new, old, src, strict=True, section="reading")
    _at_least(rep, s, new, "SETF", src)
    _at_least(rep, s, "SETF", "CE", src, strict=True)
    _at_least(rep, s, new, "CE", src, strict=True)
    for a, b, what in ((old, "SETF", "Def. 3.2's reading: CAL {} SETF"),
                       ("CAL, theta from w_k, norm averaged", new,
                        "regulariser averaged over the batch {} summed")):  # fmt: skip
        if a in s and b in s:
            rel = ">=" if _bal(s, a) >= _bal(s, b) else "<"
            rep.check("report only", f"not graded: {what.format(rel)}", f"{a} vs {b}",
                      f"{b}: {_bal(s, b):.2f}", _bal(s, a), kind="bool", ok=True,
                      source=src)  # fmt: skip


HERE_3 = (
    "Fashion-MNIST-LT (rho = 100) for CIFAR; cnn28 for ResNet-50; 8 epochs for 200; three seeds"
)
HERE_1 = "Fashion-MNIST-LT for CIFAR; cnn28 for ResNet-50; 8 epochs for 200; one seed"

TABLES = [
    _register(t)
    for t in (
        TableEntry(
            "ncmc-table1",
            NCMC_PAPER,
            "CAL is at least as good as CE and SETF in almost "
            "every imbalanced setting, with and without mixup (Table 1).",
            _table1_runs,
            {"here": [0], "paper": [0, 1, 2]},
            "Fashion-MNIST-LT at rho 50 / 100 / 200 "
            "for CIFAR-100-LT at tau 0.02 / 0.01 / 0.005; cnn28 for ResNet-50; 8 epochs "
            "for 200; one seed",
            _table1_checks,
        ),  # fmt: skip
        _backbone_entry(2, ("cifar10", "CIFAR-10"), ("cifar100", "CIFAR-100")),
        _backbone_entry(5, ("svhn", "SVHN"), ("stl10", "STL-10")),
        TableEntry(
            "ncmc-table3",
            NCMC_PAPER,
            "CAL beats CE, LDAM-DRW, KCL, SETF and ARB-Loss (Table 3, CIFAR-10/100-LT).",
            _table3_runs,
            {"here": [0, 1, 2]},
            HERE_3 + "; KCL in-batch (no MoCo queue), see methods.md",
            _table3_checks,
        ),  # fmt: skip
        TableEntry(
            "ncmc-table4",
            NCMC_PAPER,
            "Loss P is worse than the cosine loss (CAL) and is hurt by mixup (Table 4).",
            _table4_runs,
            {"here": [0, 1, 2]},
            HERE_3,
            _table4_checks,
        ),  # fmt: skip
        TableEntry(
            "ncmc-table6",
            NCMC_PAPER,
            "Over a grid of (f, theta), theta inside (0, pi/4) "
            "works best and a larger f helps under heavy imbalance (Sec. 4.4, Table 6); "
            "run with the norm regulariser summed over the batch and averaged.",
            _table6_runs,
            {"here": [0]},
            HERE_1,
            _table6_checks,
        ),  # fmt: skip
        TableEntry(
            "ncmc-cal-theta",
            NCMC_PAPER,
            "With theta = 0.2 read as the angle from the class direction (pi/2 - 0.2 in Def. "
            "3.2's convention, the project's default), CAL reproduces the paper's ordering "
            "CAL >= SETF > CE, and beats theta = 0.2 read as Def. 3.2's angle.",
            _theta_runs,
            {"here": [0, 1, 2]},
            "Fashion-MNIST-LT (rho = 100) for CIFAR; cnn28 for ResNet-50; 12 epochs (1.5x the "
            "tables' 8) for 200; three seeds",
            _theta_checks,
        ),  # fmt: skip
        TableEntry(
            "ncmc-table7",
            NCMC_PAPER,
            "Post-hoc logit adjustment improves RBL, and RBL "
            "with it beats CAL in most settings (Table 7). RBL is a reconstruction.",
            _table7_runs,
            {"here": [0, 1, 2]},
            HERE_3,
            _table7_checks,
        ),  # fmt: skip
        TableEntry(
            "allnc-ablation",
            ALLNC_PAPER,
            "Each of HyCon, P2P and GBBN contributes: the "
            "full method beats every ablation and CE. AllNC is a reconstruction.",
            _ablation_runs,
            {"here": [0, 1, 2]},
            HERE_3,
            _ablation_checks,
        ),  # fmt: skip
    )
]
