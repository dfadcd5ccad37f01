"""Deep-network reproductions of SELI and Liu: trained networks measured against the closed forms.

Entries (``ncollapse reproduce ID --scale smoke|here|paper``):

``seli-deepnet``
    Thrampoulidis, Kini, Vakilian & Behnia, "Imbalance Trouble", NeurIPS 2022 (arXiv 2208.05512),
    Sec. 5 / Fig. 4: networks trained with CE on STEP-imbalanced data (classes 0..4 majority,
    imbalance R) converge to the SELI geometry, not to the simplex ETF, and convergence worsens as
    R grows. The authors' pipeline: a 6-layer MLP of [Linear without bias -> BatchNorm -> ReLU]
    blocks (MNIST, Fashion-MNIST) or a ResNet-18, with a bias-free last layer; no augmentation,
    batch 128, SGD lr 0.1, momentum 0.9, weight decay 5e-4, 350 epochs, lr x0.1 at epochs 116 and
    232. Measured each epoch: distances of W W^T, M^T M and W M to SELI and to the ETF (the
    means centred at the unweighted global mean, SELI's convention), majority/minority norm
    ratios and minority cosines; the theory lines are SELI's STEP closed forms for the exact
    training counts (:func:`ncollapse.geometry.step_seli_closed_form`).

``liu-fig1`` .. ``liu-fig4``
    Liu, "The Exploration of Neural Collapse under Imbalanced Data" (arXiv 2411.17278), Figs. 1-4:
    a 6-layer MLP backbone followed by an L-extended linear head (L = 1, 3, 6), MSE loss with
    weight decay, with a bias (Figs. 1-2) and without (Figs. 3-4), on imbalanced subsets of
    CIFAR-10 and EMNIST. The split "figure = data set x bias" is our reading of the captions (the
    full text could not be retrieved). Measured each epoch: NC1, NC2 (W W^T and M^T M against the
    closed-form Grams of the L-layer minimizer for the exact counts and lambda), NC3 (W M) and the
    training accuracy; the theory is :func:`ncollapse.geometry.deep_linear_ufm` with
    lambda_W = lambda_H = the run's weight decay (means centred at the sample-weighted mean with a
    bias, where the minimizer has zero weighted mean, uncentred without).

Scales: ``smoke`` (seconds, CI: scikit-learn digits, tiny MLPs, 2-4 epochs; its verdict is only
"ran"), ``here`` (2 CPU cores: Fashion-MNIST stands in for CIFAR-10 and MNIST-5k for MNIST /
EMNIST, narrower MLPs and shorter schedules, listed in each entry's ``scaled`` note), ``paper``
(the papers' data sets, backbones and schedules; they run where the data exist).

Runs go through the sweep runner (:mod:`ncollapse.sweep`), so an interrupted reproduction resumes
and finished runs are not repeated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ncollapse.errors import NCollapseError
from ncollapse.io import atomic_write_text
from ncollapse.reproduce.catalogue import register_reproduction
from ncollapse.reproduce.report import Report, entry_out_dir, entry_report

SCALES = ("smoke", "here", "paper")
SELI_PAPER = "Thrampoulidis et al., Imbalance Trouble, NeurIPS 2022 (arXiv 2208.05512)"
LIU_PAPER = "Liu, The Exploration of Neural Collapse under Imbalanced Data (arXiv 2411.17278)"


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise NCollapseError(f"--scale {scale!r} is unknown; use one of {', '.join(SCALES)}")
    return scale


# ------------------------------------------------------------------------------- settings


@dataclass
class Setting:
    """One scale of one entry: the base recipe, the grid, the seeds and what was scaled."""

    recipe: dict[str, Any]
    grid: dict[str, list[Any]]
    seeds: list[int]
    scaled: str
    runs: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "mlp"}])


def _seli_setting(scale: str) -> Setting:
    sched = {"name": "step", "milestones": [116, 232], "gamma": 0.1}
    optim = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5.0e-4}
    mlp = {"depth": 6, "width": 512, "batchnorm": True, "bias": False}
    data = {"profile": "step", "k_maj": 5, "k_min": 5, "seed": 0, "batch_size": 128}
    if scale == "paper":
        recipe = {
            "data": {"name": "fashion-mnist", **data},
            "model": {
                "backbone": "mlp",
                "backbone_args": mlp,
                "head": "linear",
                "head_args": {"bias": False},
            },  # fmt: skip
            "loss": {"name": "ce"},
            "optim": optim,
            "sched": sched,
            "train": {"epochs": 350},
        }
        runs = [{"name": "mlp-fmnist"}, {"name": "mlp-mnist", "data.name": "mnist"}]
        return Setting(recipe, {"data.R": [1, 10, 100]}, [0], "none", runs)
    if scale == "here":
        recipe = {
            "data": {"name": "fashion-mnist", **data},
            "model": {
                "backbone": "mlp",
                "backbone_args": {**mlp, "width": 256},
                "head": "linear",
                "head_args": {"bias": False},
            },  # fmt: skip
            "loss": {"name": "ce"},
            "optim": optim,
            "sched": {**sched, "milestones": [50, 75]},
            "train": {"epochs": 100, "threads": 1},
        }
        runs = [{"name": "mlp-fmnist"}, {"name": "mlp-mnist5k", "data.name": "mnist5k"}]
        return Setting(
            recipe,
            {"data.R": [1, 10, 100]},
            [0],
            "Fashion-MNIST and MNIST-5k (500 images per class) for MNIST; no CIFAR-10; MLP width "
            "256 (the paper recipe here uses 512; the authors' width is not recorded); 100 epochs "
            "with lr x0.1 at 50 and 75 (paper 350, at 116 and 232); one seed",
            runs,
        )
    recipe = {
        "data": {"name": "digits", **data, "batch_size": 64},
        "model": {
            "backbone": "mlp",
            "backbone_args": {**mlp, "depth": 2, "width": 32},
            "head": "linear",
            "head_args": {"bias": False},
        },  # fmt: skip
        "loss": {"name": "ce"},
        "optim": {**optim, "lr": 0.05},
        "sched": {"name": "constant"},
        "train": {"epochs": 2, "threads": 1},
    }
    return Setting(recipe, {"data.R": [1, 10]}, [0], "smoke: digits, 2 epochs, width 32")


#: Dang et al.'s imbalanced CIFAR-10 counts (ICML 2023 code), the subset Liu's experiments follow
LIU_COUNTS = [100, 100, 200, 200, 300, 300, 400, 400, 500, 500]
#: halved for MNIST-5k, which holds about 500 images per class
LIU_COUNTS_HALF = [c // 2 for c in LIU_COUNTS]

#: Liu figures: (data stand-in at `here`, its counts, paper data, bias)
LIU_FIGS = {
    "liu-fig1": ("fashion-mnist", LIU_COUNTS, "cifar10", True),
    "liu-fig2": ("mnist5k", LIU_COUNTS_HALF, "emnist", True),
    "liu-fig3": ("fashion-mnist", LIU_COUNTS, "cifar10", False),
    "liu-fig4": ("mnist5k", LIU_COUNTS_HALF, "emnist", False),
}


def _liu_setting(fig: str, scale: str) -> Setting:
    here_data, here_counts, paper_data, bias = LIU_FIGS[fig]
    head = {"bias": bias, "init": "orthogonal"}
    if scale == "paper":
        recipe = {
            "data": {
                "name": paper_data,
                "profile": "counts",
                "counts": LIU_COUNTS,
                "seed": 0,
                "batch_size": sum(LIU_COUNTS),
            },  # fmt: skip
            "model": {
                "backbone": "liu_mlp6",
                "backbone_args": {"width": 2048},
                "head": "deep_linear",
                "head_args": head,
            },  # fmt: skip
            "loss": {"name": "mse"},
            "optim": {"lr": 0.05, "momentum": 0.9, "weight_decay": 1.0e-4},
            "sched": {"name": "step", "milestones": [6000], "gamma": 0.1},
            "train": {"epochs": 12000, "nc_every": 100},
            "eval": {"groups": "ranges", "ranges": [4, 8]},
        }
        return Setting(recipe, {"model.head_args.depth": [1, 3, 6]}, [0], "none")
    if scale == "here":
        recipe = {
            "data": {
                "name": here_data,
                "profile": "counts",
                "counts": here_counts,
                "seed": 0,
                "batch_size": 250,
            },  # fmt: skip
            "model": {
                "backbone": "liu_mlp6",
                "backbone_args": {"width": 256},
                "head": "deep_linear",
                "head_args": head,
            },  # fmt: skip
            "loss": {"name": "mse"},
            "optim": {"lr": 0.05, "momentum": 0.9, "weight_decay": 1.0e-4},
            "sched": {"name": "step", "milestones": [450], "gamma": 0.1},
            "train": {"epochs": 600, "nc_every": 10, "threads": 1},
            "eval": {"groups": "ranges", "ranges": [4, 8]},
        }
        return Setting(
            recipe,
            {"model.head_args.depth": [1, 3, 6]},
            [0],
            f"{here_data} for {paper_data}; MLP width 256 (paper 2048); SGD with momentum, "
            "batch 250, 600 epochs (7,200 steps), lr x0.1 at 450 (Dang et al.'s code: Adam, full batch, 12,000 "
            "epochs); counts halved for MNIST-5k (500 images per class)",
        )
    recipe = {
        "data": {
            "name": "digits",
            "profile": "counts",
            "counts": [c // 10 for c in LIU_COUNTS],
            "seed": 0,
            "batch_size": 64,
        },  # fmt: skip
        "model": {
            "backbone": "liu_mlp6",
            "backbone_args": {"width": 32, "depth": 2},
            "head": "deep_linear",
            "head_args": head,
        },  # fmt: skip
        "loss": {"name": "mse"},
        "optim": {"lr": 0.05, "momentum": 0.9, "weight_decay": 1.0e-4},
        "sched": {"name": "constant"},
        "train": {"epochs": 3, "threads": 1},
        "eval": {"groups": "ranges", "ranges": [4, 8]},
    }
    return Setting(recipe, {"model.head_args.depth": [1, 3]}, [0], "smoke: digits, 3 epochs")


# ------------------------------------------------------------------------------- running


def get_claim(entry_id: str) -> str:
    from ncollapse.reproduce.catalogue import REPRODUCTIONS

    return REPRODUCTIONS.meta(entry_id)["claim"]


def _report(entry_id: str, out: Path, scale: str, setting: Setting, paper: str, claim: str):
    head = f"**Paper:** {paper}\n\n**Claim:** {claim}"
    scaled = f"scaled down: {setting.scaled}" if setting.scaled != "none" else None
    return entry_report(entry_id, out, scale, head, scaled, scaled=setting.scaled, paper=paper,
                        claim=claim)  # fmt: skip


def run_setting(
    name: str, setting: Setting, out_dir: Path, *, executor: str = "local", workers=None
) -> list[dict[str, Any]]:
    """Run the setting's sweep (resumable) and return one record per run (:func:`run_spec`)."""
    import yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    recipe_path = out_dir / "recipe.yaml"
    atomic_write_text(recipe_path, yaml.safe_dump(setting.recipe, sort_keys=False))
    raw = {
        "name": name,
        "recipe": str(recipe_path),
        "runs": setting.runs,
        "grid": setting.grid,
        "seeds": setting.seeds,
    }
    return run_spec(raw, out_dir, executor=executor, workers=workers)


def run_spec(
    raw: dict[str, Any], out_dir: Path, *, executor: str = "local", workers=None
) -> list[dict[str, Any]]:
    """Run the sweep spec ``raw`` (a mapping as in a spec file) into ``out_dir/sweep`` through
    the sweep runner (finished runs are skipped, interrupted ones resumed) and return one record
    per run: its factors, seed, training counts, resolved config and metrics history."""
    from ncollapse.sweep import parse_spec, run_sweep
    from ncollapse.sweep.runner import run_dir_of

    name = raw.get("name", "sweep")
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = parse_spec({k: v for k, v in raw.items() if k != "out_dir"}, out_dir=out_dir / "sweep")
    outcome = run_sweep(spec, executor=executor, workers=workers, bar=False)
    failed = getattr(outcome, "failed", None)
    if failed:
        raise NCollapseError(
            f"{len(failed)} run(s) of {name} failed ({', '.join(map(str, failed))}); see their "
            f"run.log under {spec.out_dir}"
        )
    records = []
    for run in spec.runs:
        rd = run_dir_of(spec, run)
        hist = [
            json.loads(line) for line in (rd / "metrics.jsonl").read_text().splitlines() if line
        ]
        manifest = json.loads((rd / "manifest.json").read_text())
        records.append(
            {
                "factors": run.factors,
                "seed": run.seed,
                "counts": manifest["counts"],
                "config": run.config.to_dict(),
                "history": hist,
                "run_dir": str(rd),
            }  # fmt: skip
        )
    return records


def _nc_epochs(history: list[dict]) -> list[dict]:
    return [r for r in history if isinstance(r.get("nc"), dict) and r["nc"]]


# ------------------------------------------------------------------------------- SELI


def seli_curves(record: dict) -> dict[str, np.ndarray]:
    """Per NC epoch: distances to SELI / ETF (W, M, WM), norm ratios and minority cosines."""
    from ncollapse.metrics import gram_cosines
    from ncollapse.metrics.grams import centre_grams

    counts = np.asarray(record["counts"])
    maj = counts >= counts.max()
    mino = ~maj
    out: dict[str, list] = {k: [] for k in (
        "epoch", "dist_seli_W", "dist_etf_W", "dist_seli_M", "dist_etf_M", "dist_WM",
        "w_norm_ratio", "mu_norm_ratio", "cos_w_min", "cos_mu_min", "train_acc")}  # fmt: skip
    for r in _nc_epochs(record["history"]):
        nc2 = r["nc"]["nc2"]
        out["epoch"].append(r["epoch"] + 1)
        for k in ("dist_seli_W", "dist_etf_W", "dist_seli_M", "dist_etf_M", "dist_WM"):
            out[k].append(np.nan if nc2.get(k) is None else nc2[k])
        out["train_acc"].append(r.get("train_acc"))
        g = r["nc"].get("grams")
        if g is None or mino.sum() < 2 or maj.sum() < 1:
            for k in ("w_norm_ratio", "mu_norm_ratio", "cos_w_min", "cos_mu_min"):
                out[k].append(np.nan)
            continue
        cg = centre_grams(g, counts, "unweighted")
        for v, G in (("w", cg["WWt"]), ("mu", cg["MtM"])):
            nrm = np.sqrt(np.clip(np.diag(G), 0, None))
            out[f"{v}_norm_ratio"].append(float(nrm[maj].mean() / nrm[mino].mean()))
            C = gram_cosines(G)[np.ix_(mino, mino)]
            out[f"cos_{v}_min"].append(float(C[~np.eye(C.shape[0], dtype=bool)].mean()))
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def seli_theory(counts) -> dict:
    """SELI's STEP closed form for the exact training counts (needs a STEP profile)."""
    from ncollapse.geometry import step_seli_closed_form

    n = np.asarray(counts)
    hi, lo = int(n.max()), int(n.min())
    k_maj, k_min = int((n == hi).sum()), int((n == lo).sum())
    if k_maj + k_min != n.size or hi == lo:
        return {}
    return step_seli_closed_form(k_maj, k_min, hi / lo, lo)


@register_reproduction(
    "seli-deepnet",
    paper=SELI_PAPER,
    claim="Deep networks trained with CE on STEP-imbalanced data converge to the SELI geometry, "
    "not the simplex ETF (W W^T, M^T M and W M are closer to SELI), and convergence worsens as the "
    "imbalance R grows.",
    command="ncollapse reproduce seli-deepnet --scale here",
    out_dir="outputs/reproduce/seli-deepnet/here",
    data="Fashion-MNIST, MNIST-5k (here); MNIST, Fashion-MNIST, CIFAR-10 (paper)",
    runnable_here=True,
)
def reproduce_seli_deepnet(
    out_dir=None, *, quick: bool = False, device=None, progress=None, scale: str | None = None,
    executor: str = "local", workers=None,
) -> dict:  # fmt: skip
    """Train the SELI MLPs over R, compare with the closed forms, write the report."""
    scale = check_scale(scale or ("smoke" if quick else "here"))
    out = entry_out_dir("seli-deepnet", scale, out_dir)
    setting = _seli_setting(scale)
    rep = _report("seli-deepnet", out, scale, setting, SELI_PAPER, get_claim("seli-deepnet"))
    records = run_setting("seli-deepnet", setting, out, executor=executor, workers=workers)
    rows, finals = [], {}
    for rec in records:
        R = float(rec["config"]["data"]["R"])
        cur = seli_curves(rec)
        th = seli_theory(rec["counts"])
        label = f"{rec['factors'].get('method', '')} R={R:g}"
        fin = {k: float(v[-1]) if v.size else np.nan for k, v in cur.items()}
        finals[(rec["factors"].get("method", ""), R)] = (fin, th, cur)
        rows.append({"run": label, "counts": rec["counts"], **{k: fin[k] for k in fin},
                     "theory_w_norm_ratio": th.get("w_norm_ratio"),
                     "theory_mu_norm_ratio": th.get("mu_norm_ratio"),
                     "theory_cos_w_min": th.get("cos_w_min_min"),
                     "theory_cos_mu_min": th.get("cos_mu_min_min")})  # fmt: skip
    rep.table("final", rows)
    _seli_checks(rep, finals, scale)
    rep.figure("curves", _seli_figure(finals))
    return rep.write()


def _seli_checks(rep: Report, finals: dict, scale: str) -> None:
    src = "arXiv 2208.05512 Sec. 5"
    for (method, R), (fin, th, cur) in sorted(finals.items()):
        setting = f"{method} R={R:g}"
        if R == 1:  # SELI is the ETF: the network should approach it
            first = float(cur["dist_etf_W"][0]) if cur["dist_etf_W"].size else np.nan
            rep.check("balanced", "d(G_W, ETF) falls during training (SELI = ETF at R = 1)",
                      setting, f"< {first:.3f}", fin["dist_etf_W"], kind="bool",
                      ok=fin["dist_etf_W"] < first, source=src)  # fmt: skip
            continue
        for v in ("W", "M"):
            rep.check("SELI not ETF", f"d(G_{v}, SELI) < d(G_{v}, ETF)", setting,
                      f"< {fin[f'dist_etf_{v}']:.3f}", fin[f"dist_seli_{v}"],
                      kind="bool", ok=fin[f"dist_seli_{v}"] < fin[f"dist_etf_{v}"],
                      source=src)  # fmt: skip
        if th:
            for v, name in (("w", "w"), ("mu", "μ")):
                rep.check("norm ratio", f"||{name}_maj|| / ||{name}_min|| against the STEP closed "
                          "form", setting, th[f"{v}_norm_ratio"], fin[f"{v}_norm_ratio"], 0.25,
                          kind="rel", source=src)  # fmt: skip
            rep.check("minority cosine", "cos(w_min, w_min') against the STEP closed form",
                      setting, th["cos_w_min_min"], fin["cos_w_min"], 0.2, source=src)  # fmt: skip
    by_method: dict[str, list] = {}
    for (method, R), (fin, _, _) in finals.items():
        by_method.setdefault(method, []).append((R, fin))
    for method, lst in by_method.items():
        lst.sort(key=lambda t: t[0])
        if len(lst) < 2:
            continue
        d = [float(np.nanmean([f["dist_seli_W"], f["dist_seli_M"]])) for _, f in lst]
        rep.check("worse with R", "mean of d(G_W, SELI), d(G_M, SELI) grows with R",
                  f"{method} R={[float(r) for r, _ in lst]}", "increasing",
                  [round(x, 4) for x in d], kind="bool", ok=bool(np.all(np.diff(d) > 0)),
                  source=src)  # fmt: skip


def _seli_figure(finals: dict):
    """Two rows: distances of W W^T, M^T M, W M to SELI (solid) and the ETF (dashed); norm ratios
    and minority cosines of classifiers and means with SELI's STEP closed form (dotted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7.2), dpi=100)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, ((method, R), (_, th, cur)) in enumerate(sorted(finals.items())):
        c = colors[i % len(colors)]
        lab = f"{method} R={R:g}"
        ep = cur["epoch"]
        for ax, v in zip(axes[0, :2], ("W", "M"), strict=True):
            ax.plot(ep, cur[f"dist_seli_{v}"], color=c, label=lab)
            ax.plot(ep, cur[f"dist_etf_{v}"], color=c, ls="--")
        axes[0, 2].plot(ep, cur["dist_WM"], color=c, label=lab)
        axes[1, 0].plot(ep, cur["w_norm_ratio"], color=c, label=lab)
        axes[1, 1].plot(ep, cur["mu_norm_ratio"], color=c, label=lab)
        axes[1, 2].plot(ep, cur["cos_w_min"], color=c, label=lab)
        axes[1, 2].plot(ep, cur["cos_mu_min"], color=c, ls="--")
        if th:
            axes[1, 0].axhline(th["w_norm_ratio"], color=c, ls=":", lw=1.2)
            axes[1, 1].axhline(th["mu_norm_ratio"], color=c, ls=":", lw=1.2)
            axes[1, 2].axhline(th["cos_w_min_min"], color=c, ls=":", lw=1.2)
    axes[0, 0].set(title="d(W Wᵀ, ·): solid SELI, dashed ETF")
    axes[0, 1].set(title="d(Mᵀ M, ·): solid SELI, dashed ETF")
    axes[0, 2].set(title="d(W M, ·) (SELI and ETF agree)")
    axes[1, 0].set(title="‖w_maj‖ / ‖w_min‖ (dotted: SELI)")
    axes[1, 1].set(title="‖μ_maj‖ / ‖μ_min‖ (dotted: SELI)")
    axes[1, 2].set(title="minority cos: solid w, dashed μ (dotted: SELI w)")
    for ax in axes.flat:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------- Liu


def liu_theory(counts, depth: int, weight_decay: float, bias: bool):
    from ncollapse.geometry import deep_linear_ufm

    return deep_linear_ufm(counts, int(depth), float(weight_decay), float(weight_decay), bias)


def liu_curves(record: dict) -> dict[str, np.ndarray]:
    """Per NC epoch: NC1, NC2 (W W^T and M^T M against the closed form), NC3 (W M), train acc."""
    from ncollapse.metrics import gram_distance
    from ncollapse.metrics.grams import centre_grams

    cfg = record["config"]
    head = cfg["model"]["head_args"]
    bias = bool(head.get("bias", False))
    th = liu_theory(record["counts"], head.get("depth", 3), cfg["optim"]["weight_decay"], bias)
    n = np.asarray(record["counts"], dtype=float)
    p = n / n.sum()
    keys = ("epoch", "nc1", "nc2_W", "nc2_M", "nc3", "train_acc", "bias_err", "alive")
    out: dict[str, list] = {k: [] for k in keys}
    out["alive_theory"] = int(np.sum(~np.asarray(th.zeroed)))
    for r in _nc_epochs(record["history"]):
        out["epoch"].append(r["epoch"] + 1)
        out["nc1"].append(r["nc"]["nc1"]["nc1"])
        out["train_acc"].append(r.get("train_acc"))
        g = r["nc"].get("grams")
        if g is None:
            for k in ("nc2_W", "nc2_M", "nc3", "bias_err", "alive"):
                out[k].append(np.nan)
            continue
        cg = centre_grams(g, record["counts"], "weighted" if bias else "none")
        out["nc2_W"].append(gram_distance(cg["WWt"], th.WWt))
        out["nc2_M"].append(gram_distance(cg["MtM"], th.MtM))
        out["nc3"].append(gram_distance(cg["WM"], th.WM))
        # directions of W M alive: singular values above 1 % of the largest
        sv = np.linalg.svd(np.asarray(cg["WM"], dtype=float), compute_uv=False)
        out["alive"].append(int(np.sum(sv > 1e-2 * sv.max())) if sv.max() > 0 else 0)
        # the logit of the weighted global mean, b + W mu_G, is the bias of the minimizer (whose
        # features have zero weighted mean): n / N
        b = (r["nc"].get("per_class") or {}).get("bias")
        if bias and b is not None:
            b_eff = np.asarray(b, dtype=float) + np.asarray(g["WM"], dtype=float) @ p
            out["bias_err"].append(float(np.max(np.abs(b_eff - th.b))))
        else:
            out["bias_err"].append(np.nan)
    res = {k: np.asarray(v, dtype=float) for k, v in out.items() if k != "alive_theory"}
    res["alive_theory"] = np.asarray(out["alive_theory"], dtype=float)
    return res


def _liu_entry(fig: str):
    here_data, here_counts, paper_data, bias = LIU_FIGS[fig]

    def recipe(
        out_dir=None, *, quick: bool = False, device=None, progress=None, scale: str | None = None,
        executor: str = "local", workers=None,
    ) -> dict:  # fmt: skip
        scale_ = check_scale(scale or ("smoke" if quick else "here"))
        out = entry_out_dir(fig, scale_, out_dir)
        setting = _liu_setting(fig, scale_)
        rep = _report(fig, out, scale_, setting, LIU_PAPER, get_claim(fig))
        rep.meta["bias"] = bias
        records = run_setting(fig, setting, out, executor=executor, workers=workers)
        curves, rows = {}, []
        for rec in records:
            L = int(rec["config"]["model"]["head_args"]["depth"])
            cur = liu_curves(rec)
            curves[L] = cur
            series = {k: v for k, v in cur.items() if k != "alive_theory"}
            fin = {k: float(v[-1]) if v.size else np.nan for k, v in series.items()}
            first = {k: float(v[0]) if v.size else np.nan for k, v in series.items()}
            alive_th = int(cur["alive_theory"])
            rows.append({"L": L, **fin, "alive_theory": alive_th})
            src = "arXiv 2411.17278 abstract (global minimizer)"
            rep.check("NC1", "NC1 falls during training", f"L={L}", f"< {first['nc1']:.3g}",
                      fin["nc1"], kind="bool", ok=fin["nc1"] < first["nc1"], source=src)  # fmt: skip
            for k, what in (("nc2_W", "W W^T"), ("nc2_M", "M^T M"), ("nc3", "W M")):
                rep.check("closed form", f"d({what}, minimizer) falls during training", f"L={L}",
                          f"< {first[k]:.3g}", fin[k], kind="bool",
                          ok=bool(fin[k] < first[k]), source=src)  # fmt: skip
                rep.check("closed form", f"d({what}, minimizer) at the end", f"L={L}", "0",
                          fin[k], 0.3, kind="max", source=src)  # fmt: skip
            rep.check("closed form", "directions of W M alive (singular values > 1% of the "
                      "largest) at the end", f"L={L}", alive_th, fin["alive"], 0.0,
                      source=src)  # fmt: skip
            if bias:
                rep.check("closed form", "effective bias b + W mu_G against n/N (max abs error)",
                          f"L={L}", 0.0, fin["bias_err"], 0.01, kind="max",
                          source=src)  # fmt: skip
        rep.table("final", rows)
        rep.figure("curves", _liu_figure(curves, fig, bias))
        return rep.write()

    recipe.__name__ = f"reproduce_{fig.replace('-', '_')}"
    recipe.__qualname__ = recipe.__name__
    return register_reproduction(
        fig,
        paper=LIU_PAPER,
        claim=(
            f"With{'' if bias else 'out'} a bias, a 6-layer MLP with an L-layer linear head "
            f"(L = 1, 3, 6) trained with MSE and weight decay approaches the closed-form global "
            f"minimizer of the L-extended UFM: NC1 -> 0 and W W^T, M^T M, W M -> their predicted "
            f"Grams ({paper_data} in the paper)."
        ),
        command=f"ncollapse reproduce {fig} --scale here",
        out_dir=f"outputs/reproduce/{fig}/here",
        data=f"{here_data} (here); {paper_data} (paper)",
        runnable_here=True,
    )(recipe)


def _liu_figure(curves: dict, fig_id: str, bias: bool):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 5, figsize=(16, 3.4), dpi=110)
    keys = (("nc1", "NC1"), ("nc2_W", "d(W W^T, theory)"), ("nc2_M", "d(M^T M, theory)"),
            ("nc3", "d(W M, theory)"), ("train_acc", "train accuracy"))  # fmt: skip
    for L, cur in sorted(curves.items()):
        for ax, (k, title) in zip(axes, keys):
            ax.plot(cur["epoch"], cur[k], label=f"L={L}")
            ax.set(title=title, xlabel="epoch")
    for ax, (k, _) in zip(axes, keys):
        if k.startswith("nc") and k != "nc1":
            ax.axhline(0.0, color="k", ls=":", lw=1)  # the theory: distance 0
        if k == "nc1":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{fig_id}: {'with' if bias else 'without'} bias (dotted: closed-form minimizer)")
    fig.tight_layout()
    return fig


LIU_ENTRIES = {fig: _liu_entry(fig) for fig in LIU_FIGS}
