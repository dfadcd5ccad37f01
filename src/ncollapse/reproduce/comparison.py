"""The long-tail comparison behind NCMC's Tables 1-2 and AllNC's comparison table.

Entry ``ncmc-allnc-comparison`` (``ncollapse reproduce ncmc-allnc-comparison --scale ...``):

* NCMC (Yan et al., NeurIPS 2024, Tables 1 and 2, CIFAR-10/100-LT at rho = 100 with ResNet-50):
  CAL's accuracy is at least SETF's, and both beat CE; CAL's gain over CE is largest on the few-shot
  classes.
* AllNC (Zhang et al., TKDE 2025, arXiv 2408.07253, comparison table): the full method (HyCon + P2P
  + GBBN) beats the baselines it is compared with (here CE, LDAM-DRW, SETF and CAL). The project's
  AllNC is a reconstruction from the paper's description (:mod:`ncollapse.methods.allnc`).

Scales: ``smoke`` (CI: scikit-learn digits, an MLP, one epoch, one seed: plumbing only); ``here``
(the packaged sweep ``fmnist_results``: Fashion-MNIST-LT at rho = 100, the same small CNN and 8-epoch
schedule for every method, three seeds); ``paper`` (CIFAR-10-LT at rho = 100, ResNet-50, the NCMC
paper's 200-epoch recipe for CE / SETF / CAL; LDAM-DRW and AllNC have no paper-scale recipe here).
Mean and standard deviation are over the training seeds; the verdicts compare means.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ncollapse.reproduce.catalogue import register_reproduction
from ncollapse.reproduce.deepnet import check_scale, run_spec
from ncollapse.reproduce.report import Report, entry_out_dir, entry_report

__all__ = ["comparison_spec", "reproduce_comparison"]

NCMC_PAPER = "Yan et al., Neural Collapse to Multiple Centers for Imbalanced Data, NeurIPS 2024"
ALLNC_PAPER = "Zhang et al., All-around Neural Collapse, TKDE 2025 (arXiv 2408.07253)"
ID = "ncmc-allnc-comparison"
#: the methods compared, with the label each run gets
METHODS = {
    "CE": "fmnist_lt_ce",
    "LDAM-DRW": "fmnist_lt_ldam_drw",
    "SETF": "fmnist_lt_setf",
    "CAL (NCMC)": "methods/fmnist_lt_cal",
    "AllNC (reconstr.)": "methods/fmnist_lt_allnc",
}
MEASURES = ("test_acc", "balanced_acc", "many", "medium", "few")
#: the overrides that turn a Fashion-MNIST recipe into a CI smoke run (also used by the tables)
SMOKE_SET = {
    "data.name": "digits",
    "data.options": {},  # the paper recipes' reader options (SVHN's extra) do not apply to digits
    "data.rho": 10,
    "data.batch_size": 64,
    "model.backbone": "mlp",
    "model.backbone_args": {"depth": 2, "width": 32},
    "train.epochs": 1,
    "train.threads": 1,
    "sched.warmup_epochs": 0,
    "eval.groups": "ranges",
    "eval.ranges": [3, 7],
    "eval.many": None,
    "eval.few": None,
}


def comparison_spec(scale: str) -> tuple[dict[str, Any], str]:
    """The sweep spec of a scale and a sentence saying what was scaled down."""
    import yaml

    from ncollapse.recipes import RECIPES_DIR

    if scale == "here":
        raw = yaml.safe_load((RECIPES_DIR / "sweeps" / "fmnist_results.yaml").read_text())
        return raw, (
            "Fashion-MNIST-LT (rho = 100, 14,886 images) for CIFAR-10/100-LT; the small cnn28 "
            "(64-d features) for ResNet-50; 8 epochs (1 warm-up, cosine) for 200; three seeds"
        )
    if scale == "paper":
        runs = [
            {"name": "CE", "recipe": "methods/paper/cifar10_resnet50_ce_rho100"},
            {"name": "SETF", "recipe": "methods/paper/cifar10_resnet50_setf_rho100"},
            {"name": "CAL (NCMC)", "recipe": "methods/paper/cifar10_resnet50_cal_rho100"},
        ]
        raw = {"name": ID, "set": {"run.tensorboard": False}, "runs": runs, "seeds": [0, 1, 2]}
        return raw, "none for CE / SETF / CAL (NCMC Table 1 recipe); no LDAM-DRW or AllNC run"
    runs = [{"name": m, "recipe": r} for m, r in METHODS.items()]
    raw = {"name": ID, "set": {**SMOKE_SET, "run.tensorboard": False}, "runs": runs, "seeds": [0]}
    return raw, "smoke: digits, an MLP of width 32, one epoch, one seed"


def _final(rec: dict) -> dict[str, float]:
    """Final-epoch accuracies; a run configured with post-hoc logit adjustment
    (``eval.posthoc_tau``) is scored by its adjusted predictions (``posthoc_acc``)."""
    last = rec["history"][-1]
    tau = ((rec.get("config") or {}).get("eval") or {}).get("posthoc_tau")
    if tau is not None and isinstance(last.get("posthoc_acc"), dict):
        last = last["posthoc_acc"]
    g = last.get("group_acc") or {}
    out = {"test_acc": last.get("test_acc"), "balanced_acc": last.get("balanced_acc")}
    # smoke runs use index ranges (head / medium / tail); the shot groups are many / medium / few
    for new, olds in (("many", ("many", "head")), ("medium", ("medium",)),
                      ("few", ("few", "tail"))):  # fmt: skip
        out[new] = next((g[o] for o in olds if g.get(o) is not None), None)
    return {k: np.nan if v is None else 100.0 * float(v) for k, v in out.items()}


def summarise(records: list[dict]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """``{method: {measure: (mean, std, seeds)}}`` of the final epoch (accuracies in %)."""
    by: dict[str, list[dict[str, float]]] = {}
    for rec in records:
        by.setdefault(rec["factors"].get("method", "?"), []).append(_final(rec))
    out = {}
    for m, finals in by.items():
        out[m] = {}
        for k in MEASURES:
            v = np.array([f[k] for f in finals], dtype=float)
            v = v[np.isfinite(v)]
            out[m][k] = (
                (float(v.mean()), float(v.std()), int(v.size)) if v.size else (np.nan, np.nan, 0)
            )
    return out


@register_reproduction(
    ID,
    paper=f"{NCMC_PAPER}; {ALLNC_PAPER}",
    claim="NCMC: CAL's balanced accuracy is at least SETF's and both beat CE, with CAL's gain over "
    "CE largest on the few-shot classes (Tables 1-2, rho = 100). AllNC: the full method beats "
    "CE, LDAM-DRW, SETF and CAL (its comparison table).",
    command=f"ncollapse reproduce {ID} --scale here --workers 2",
    out_dir=f"outputs/reproduce/{ID}/here",
    data="Fashion-MNIST (here); CIFAR-10 (paper)",
    runnable_here=True,
)
def reproduce_comparison(
    out_dir=None, *, quick: bool = False, device=None, progress=None, scale: str | None = None,
    executor: str = "local", workers=None,
) -> dict:  # fmt: skip
    """Run the comparison sweep, tabulate mean ± std over seeds and check the claims."""
    scale = check_scale(scale or ("smoke" if quick else "here"))
    out = entry_out_dir(ID, scale, out_dir)
    raw, scaled = comparison_spec(scale)
    claim = (
        "CAL >= SETF > CE in balanced accuracy, CAL's gain over CE largest on few-shot classes "
        "(NCMC); AllNC above every baseline (AllNC)."
    )
    head = f"**Papers:** {NCMC_PAPER}; {ALLNC_PAPER}\n\n**Claim:** {claim}"
    return accuracy_report(ID, out, scale, scaled, head, claim, raw, _checks, executor=executor,
                           workers=workers, noun="papers")  # fmt: skip


def accuracy_report(
    id: str, out: Path, scale: str, scaled: str, head: str, claim: str, raw: dict, checks,
    *, executor: str = "local", workers=None, noun: str = "paper",
) -> dict:  # fmt: skip
    """Run the sweep spec ``raw`` into ``out``, tabulate the accuracies (mean ± std over seeds,
    :func:`summarise`), apply ``checks(report, summary)`` and write the report. ``head`` opens the
    report (paper and claim); the comparison and every table entry report this way."""
    rep = entry_report(id, out, scale, head, f"scaled down: {scaled}", noun=noun, scaled=scaled,
                       claim=claim)  # fmt: skip
    summary = summarise(run_spec(raw, out, executor=executor, workers=workers))
    rows = [{"method": m, **{f"{k}_mean": v[0] for k, v in s.items()},
             **{f"{k}_std": v[1] for k, v in s.items()}, "seeds": s["balanced_acc"][2]}
            for m, s in summary.items()]  # fmt: skip
    rep.table("accuracy", rows)
    checks(rep, summary)
    return rep.write()


def _checks(rep: Report, s: dict) -> None:
    def bal(m):
        return s[m]["balanced_acc"][0] if m in s else np.nan

    def gt(section, what, a, b, src, strict=True):
        if a not in s or b not in s:
            return
        x, y = bal(a), bal(b)
        ok = x > y if strict else x >= y
        rep.check(section, what, f"{a} vs {b}", f"{'>' if strict else '>='} {y:.2f}", x,
                  kind="bool", ok=bool(ok), source=src)  # fmt: skip

    ncmc = "NCMC, NeurIPS 2024, Tables 1-2"
    gt("NCMC ordering", "balanced acc: CAL >= SETF", "CAL (NCMC)", "SETF", ncmc, strict=False)
    gt("NCMC ordering", "balanced acc: SETF > CE", "SETF", "CE", ncmc)
    gt("NCMC ordering", "balanced acc: CAL > CE", "CAL (NCMC)", "CE", ncmc)
    if "CAL (NCMC)" in s and "CE" in s:
        gains = {g: s["CAL (NCMC)"][g][0] - s["CE"][g][0] for g in ("many", "medium", "few")}
        rep.check("NCMC ordering", "CAL's gain over CE is largest on few-shot classes",
                  "CAL - CE per group", "few largest", [round(v, 2) for v in gains.values()],
                  kind="bool", ok=bool(gains["few"] >= max(gains.values())),
                  source=ncmc)  # fmt: skip
    allnc = "AllNC, TKDE 2025, comparison table"
    for other in ("CE", "LDAM-DRW", "SETF", "CAL (NCMC)"):
        gt("AllNC above baselines", f"balanced acc: AllNC > {other}", "AllNC (reconstr.)", other,
           allnc)  # fmt: skip
