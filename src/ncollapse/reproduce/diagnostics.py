"""The papers' NC diagnostics as catalogue entries: curves and geometry, not accuracies.

* ``ncmc-nc-curves`` (Yan et al., NeurIPS 2024, "Neural Collapse to Multiple Centers for
  Imbalanced Data", Sec. 4.3, Figs. 1 and 4): under AL and CAL the per-sample collapse
  ``NC = ‖h/‖h‖ − w̄_y/‖w̄_y‖‖²`` falls during training (its mean NC_ave and std NC_std tend to
  zero), while the variability ``1 − cos(h, w_y)`` stays away from zero (features align with the
  mean of their class's centers, not with ``w_y``: Remark 3.6). Fig. 4 trains Loss P with and
  without a feature-norm regulariser (5e-4). The prediction for the variability is the closed form
  of Cor. 3.7: at NCMC, ``cos(h_k, w_k) = cos ρ_k`` (``geometry.cos_rho``), so the variability
  tends to the count-weighted mean of ``1 − cos ρ_k``. AL and CAL run with both readings of the
  paper's θ = 0.2 (``geometry.paper_theta``), because the variability tells them apart.
* ``allnc-minority-collapse`` (Zhang et al., TKDE 2025, arXiv 2408.07253, abstract and Sec. 1):
  "complete minority collapse": under CE not only the minority classifiers but also the minority
  class means are squeezed; fixing the classifier alone (SETF) leaves the means compressed and
  violates self-duality; AllNC restores the collapse at all three levels. Measured on the final
  epoch of the comparison runs (``ncmc-allnc-comparison``: its sweep is reused, nothing is
  retrained when it has run): the mean pairwise cosine of the centred class means and of the
  classifiers within the few-shot and many-shot groups, the self-duality distance and NC1.

Both read the per-epoch measures the trainer logs (``metrics.jsonl``: ``nc.ncmc``, ``nc.groups``,
``nc.nc1``, ``nc.nc3``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ncollapse.reproduce.catalogue import register_reproduction
from ncollapse.reproduce.comparison import ALLNC_PAPER, NCMC_PAPER, SMOKE_SET, comparison_spec
from ncollapse.reproduce.deepnet import check_scale, run_spec
from ncollapse.reproduce.report import Report, entry_out_dir, entry_report

__all__ = ["ncmc_curves", "predicted_variability", "reproduce_minority", "reproduce_nc_curves"]

CAL, AL, LOSS_P = "methods/fmnist_lt_cal", "methods/fmnist_lt_al", "methods/fmnist_lt_loss_p"
CURVES_ID, MINORITY_ID = "ncmc-nc-curves", "allnc-minority-collapse"
CURVES_CLAIM = (
    "Under AL and CAL, NC_ave and NC_std fall during training while the variability "
    "1 − cos(h, w_y) stays away from zero — at NCMC it equals 1 − cos ρ_k (Cor. 3.7, Remark 3.6); "
    "Loss P's features collapse too, with and without a feature-norm regulariser of 5e-4 (Fig. 4)."
)


# ------------------------------------------------------------------------------ NC curves


def _curve_runs(scale: str) -> list[dict[str, Any]]:
    from ncollapse.geometry import NCMC_THETA, PAPER_THETA

    runs = []
    for mode, rec in (("CAL", CAL), ("AL", AL)):
        for label, th in (("theta from w_k", NCMC_THETA), ("theta as Def. 3.2", PAPER_THETA)):
            runs.append({"name": f"{mode}, {label}", "recipe": rec, "model.head_args.theta": th})
    runs.append({"name": "Loss P, norm regulariser 5e-4", "recipe": LOSS_P})
    runs.append({"name": "Loss P, no regulariser", "recipe": LOSS_P,
                 "loss.params.feature_decay": 0.0})  # fmt: skip
    if scale == "smoke":  # the plumbing: two runs, two epochs (curves need two points)
        return [{**r, "train.epochs": 2} for r in (runs[0], runs[-2])]
    return runs


def ncmc_curves(record: dict) -> dict[str, np.ndarray]:
    """Per-epoch ``epoch``, ``NC_ave``, ``NC_std``, ``variability`` and ``balanced_acc`` of a run."""
    rows = [h for h in record["history"] if isinstance((h.get("nc") or {}).get("ncmc"), dict)]
    out = {"epoch": np.array([h["epoch"] for h in rows], dtype=float)}
    for k in ("NC_ave", "NC_std", "variability"):
        out[k] = np.array([h["nc"]["ncmc"].get(k, np.nan) for h in rows], dtype=float)
    out["balanced_acc"] = np.array([h.get("balanced_acc", np.nan) for h in rows], dtype=float)
    return out


def predicted_variability(record: dict) -> float:
    """Cor. 3.7's variability at NCMC for a run's frame: ``Σ_k n_k (1 − cos ρ_k) / N`` with the
    run's training counts, its head's f_k (class-aware or average) and θ."""
    from ncollapse.geometry import NCMC_THETA, center_counts, cos_rho

    cfg = record["config"]["model"]["head_args"]
    n = np.asarray(record["counts"], dtype=float)
    fk = center_counts(cfg.get("mode", "cal"), n.size, int(cfg.get("f", 20)), counts=n)
    theta = cfg.get("theta")
    rho = cos_rho(fk, NCMC_THETA if theta is None else float(theta))
    return float(np.sum(n * (1.0 - rho)) / n.sum())


@register_reproduction(
    CURVES_ID,
    paper=NCMC_PAPER,
    claim=CURVES_CLAIM,
    command=f"ncollapse reproduce {CURVES_ID} --scale here --workers 2",
    out_dir=f"outputs/reproduce/{CURVES_ID}/here",
    data="Fashion-MNIST (here); no paper-scale recipe: the figures' data sets are not on this "
    "machine",
    runnable_here=True,
)
def reproduce_nc_curves(
    out_dir=None, *, quick: bool = False, device=None, progress=None, scale: str | None = None,
    executor: str = "local", workers=None,
) -> dict:  # fmt: skip
    """Train AL / CAL (both θ readings) and Loss P (with / without the regulariser), plot the NC
    curves and check the claims."""
    scale = check_scale(scale or ("smoke" if quick else "here"))
    if scale == "paper":
        from ncollapse.errors import NCollapseError

        raise NCollapseError(
            f"{CURVES_ID} has no paper scale (CIFAR-10/100 are not on this machine); use --scale here"
        )
    out = entry_out_dir(CURVES_ID, scale, out_dir)
    scaled = {
        "smoke": "smoke: digits, an MLP of width 32, two epochs, CAL and Loss P only",
        "here": "Fashion-MNIST-LT (rho = 100) for CIFAR-10-LT (tau = 0.01); cnn28 + a 256-d "
        "projection for ResNet-50; 8 epochs for 200; one seed (the paper's figures are one run)",
    }[scale]
    head = f"**Paper:** {NCMC_PAPER}\n\n**Claim:** {CURVES_CLAIM}"
    rep = entry_report(CURVES_ID, out, scale, head, f"scaled down: {scaled}", scaled=scaled)
    base = {"run.tensorboard": False, **(SMOKE_SET if scale == "smoke" else {})}
    raw = {"name": CURVES_ID, "set": base, "runs": _curve_runs(scale), "seeds": [0]}
    records = run_spec(raw, out, executor=executor, workers=workers)
    curves = {r["factors"]["method"]: (ncmc_curves(r), r) for r in records}
    rows = []
    for name, (c, r) in curves.items():
        pred = predicted_variability(r)
        rows.append({"run": name, "nc_epochs": int(c["epoch"].size),
                     "NC_ave_first": c["NC_ave"][0], "NC_ave_last": c["NC_ave"][-1],
                     "NC_std_first": c["NC_std"][0], "NC_std_last": c["NC_std"][-1],
                     "variability_last": c["variability"][-1], "variability_cor37": pred,
                     "balanced_acc_last": 100 * c["balanced_acc"][-1]})  # fmt: skip
        if c["epoch"].size < 2:
            continue
        src = "NCMC Sec. 4.3, Figs. 1/4"
        for k in ("NC_ave", "NC_std"):
            rep.check("collapse", f"{k} falls during training", name,
                      f"< {c[k][0]:.4f} (first epoch)", c[k][-1], kind="bool",
                      ok=bool(c[k][-1] < c[k][0]), source=src)  # fmt: skip
        if not name.startswith("Loss P"):
            v = c["variability"][-1]
            rep.check("variability", "variability stays away from zero (> 0.1)", name, "> 0.1",
                      v, kind="bool", ok=bool(v > 0.1), source=src)  # fmt: skip
            rep.check("variability", "variability tends to Cor. 3.7's Σ n_k (1 − cos ρ_k) / N "
                      "(moves toward it)", name, round(pred, 4), v, kind="bool",
                      ok=bool(abs(v - pred) < abs(c["variability"][0] - pred)),
                      source="NCMC Cor. 3.7, Remark 3.6")  # fmt: skip
    rep.table("curves_final", rows)
    rep.table("curves", [{"run": n, **{k: float(v[i]) for k, v in c.items()}}
                         for n, (c, _) in curves.items() for i in range(c["epoch"].size)])  # fmt: skip
    if any(c["epoch"].size for c, _ in curves.values()):
        rep.figure("curves", _curves_figure({n: c for n, (c, _) in curves.items()}))
    return rep.write()


def _curves_figure(curves: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8), dpi=100)
    for name, c in curves.items():
        ls = "--" if "Def. 3.2" in name else (":" if name.startswith("Loss P") else "-")
        for ax, k in zip(axes, ("NC_ave", "NC_std", "variability", "balanced_acc"), strict=True):
            ax.plot(c["epoch"], c[k], ls=ls, marker=".", label=name)
    for ax, t in zip(axes, ("NC_ave (log)", "NC_std (log)", "variability 1 − cos(h, w_y)",
                            "balanced test accuracy"), strict=True):  # fmt: skip
        ax.set(title=t, xlabel="epoch")
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------- minority collapse


def _group(g: dict, names: tuple[str, ...]) -> dict:
    return next((g[n] for n in names if isinstance(g.get(n), dict)), {})


def minority_final(record: dict) -> dict[str, float]:
    """Final-epoch geometry of a run: mean pairwise cosine of the centred class means
    (``mean_cos``) and of the classifiers (``classifier_cos``) in the many- and few-shot groups,
    the mean duality cosine cos(w_k, μ_k) of each group, NC1 and the self-duality distance."""
    nc = next(h["nc"] for h in reversed(record["history"]) if isinstance(h.get("nc"), dict))
    groups = nc.get("groups") or {}
    many, few = _group(groups, ("many", "head")), _group(groups, ("few", "tail"))
    pc = nc.get("per_class") or {}
    dual = np.asarray(pc.get("duality_cos") or [np.nan] * len(record["counts"]), dtype=float)
    out = {}
    for gname, g in (("many", many), ("few", few)):
        out[f"{gname}_mean_cos"] = g.get("mean_cos", np.nan)
        out[f"{gname}_classifier_cos"] = g.get("classifier_cos", np.nan)
        idx = g.get("classes") or []
        out[f"{gname}_duality_cos"] = float(np.nanmean(dual[idx])) if idx else np.nan
    out["nc1"] = nc["nc1"]["nc1"]
    out["self_duality"] = nc["nc3"]["self_duality"]
    return {k: np.nan if v is None else float(v) for k, v in out.items()}


@register_reproduction(
    MINORITY_ID,
    paper=ALLNC_PAPER,
    claim="Complete minority collapse: under CE the minority class means are squeezed along with "
    "the minority classifiers; fixing the classifier (SETF) leaves the means compressed and "
    "self-duality violated; AllNC restores NC1, the means and self-duality.",
    command=f"ncollapse reproduce {MINORITY_ID} --scale here",
    out_dir=f"outputs/reproduce/{MINORITY_ID}/here",
    data="Fashion-MNIST (here; the comparison's runs); CIFAR-10 (paper, CE / SETF / CAL only)",
    runnable_here=True,
)
def reproduce_minority(
    out_dir=None, *, quick: bool = False, device=None, progress=None, scale: str | None = None,
    executor: str = "local", workers=None,
) -> dict:  # fmt: skip
    """Measure the comparison runs' final geometry and check AllNC's diagnosis."""
    scale = check_scale(scale or ("smoke" if quick else "here"))
    out = entry_out_dir(MINORITY_ID, scale, out_dir)
    # the comparison's sweep: reused (finished runs are skipped), or trained into out_dir when an
    # explicit out_dir is given
    sweep_root = out if out_dir is not None else entry_out_dir("ncmc-allnc-comparison", scale)
    raw, scaled = comparison_spec(scale)
    raw = {**raw, "name": MINORITY_ID}
    head = (
        f"**Paper:** {ALLNC_PAPER}\n\n**Claim:** under imbalance the minority class means are "
        "squeezed along with the minority classifiers (complete minority collapse); a fixed "
        "classifier (SETF) leaves the means compressed and self-duality violated; AllNC restores "
        "NC1, the class means and self-duality."
    )
    rep = entry_report(MINORITY_ID, out, scale, head,
                       f"the runs of `ncmc-allnc-comparison`; scaled down: {scaled}",
                       command_note=f" (sweep folder `{sweep_root}/sweep`)", scaled=scaled,
                       sweep=str(sweep_root / "sweep"))  # fmt: skip
    records = run_spec(raw, sweep_root, executor=executor, workers=workers)
    by: dict[str, list[dict]] = {}
    for r in records:
        by.setdefault(r["factors"]["method"], []).append(minority_final(r))
    s = {m: {k: float(np.nanmean([f[k] for f in fs])) for k in fs[0]} for m, fs in by.items()}
    rep.table("geometry", [{"method": m, **v, "seeds": len(by[m])} for m, v in s.items()])
    _minority_checks(rep, s)
    if s:
        rep.figure("geometry", _minority_figure(s))
    return rep.write()


def _minority_checks(rep: Report, s: dict) -> None:
    src = "AllNC abstract, Sec. 1 (reconstruction: AllNC is ours)"
    ce, setf = s.get("CE"), s.get("SETF")
    allnc = s.get("AllNC (reconstr.)")

    def cmp(section, what, setting, a, b, greater=True):
        if not (np.isfinite(a) and np.isfinite(b)):
            return
        ok = a > b if greater else a < b
        rep.check(section, what, setting, f"{'>' if greater else '<'} {b:.3f}", round(a, 3),
                  kind="bool", ok=bool(ok), source=src)  # fmt: skip

    if ce:
        cmp(
            "CE",
            "minority classifiers squeezed: few-shot classifier cosine > many-shot",
            "CE",
            ce["few_classifier_cos"],
            ce["many_classifier_cos"],
        )
        cmp(
            "CE",
            "minority class means squeezed too: few-shot mean cosine > many-shot",
            "CE",
            ce["few_mean_cos"],
            ce["many_mean_cos"],
        )
    if setf:
        cmp("SETF", "with a fixed ETF classifier the minority means stay compressed "
            "(few-shot mean cosine > many-shot)", "SETF", setf["few_mean_cos"],
            setf["many_mean_cos"])  # fmt: skip
        cmp(
            "SETF",
            "self-duality weaker on the minority: few-shot cos(w_k, μ_k) < many-shot",
            "SETF",
            setf["few_duality_cos"],
            setf["many_duality_cos"],
            greater=False,
        )
    if allnc:
        for other, v in (("CE", ce), ("SETF", setf)):
            if not v:
                continue
            cmp(
                "AllNC",
                f"minority means less squeezed than {other} (few-shot mean cosine)",
                f"AllNC vs {other}",
                allnc["few_mean_cos"],
                v["few_mean_cos"],
                greater=False,
            )
            cmp(
                "AllNC",
                f"self-duality distance below {other}'s",
                f"AllNC vs {other}",
                allnc["self_duality"],
                v["self_duality"],
                greater=False,
            )
            cmp(
                "AllNC",
                f"NC1 below {other}'s",
                f"AllNC vs {other}",
                allnc["nc1"],
                v["nc1"],
                greater=False,
            )


def _minority_figure(s: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(s)
    x = np.arange(len(methods))
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), dpi=100)
    for ax, key, title in ((axes[0], "mean_cos", "pairwise cosine of centred class means"),
                           (axes[1], "classifier_cos", "pairwise cosine of classifiers"),
                           (axes[2], "duality_cos", "cos(w_k, μ_k), mean over the group")):  # fmt: skip
        ax.bar(x - 0.2, [s[m][f"many_{key}"] for m in methods], 0.4, label="many-shot")
        ax.bar(x + 0.2, [s[m][f"few_{key}"] for m in methods], 0.4, label="few-shot")
        ax.set_xticks(x, methods, rotation=20, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
