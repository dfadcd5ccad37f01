"""``ncollapse ufm ...``: solve unconstrained-features models, sweep grids, reproduce papers.

* ``ufm solve``: one problem (CE + ridge, deep-linear MSE, NCMC Loss P) with its theory check;
* ``ufm sweep``: a grid solved as one batched problem;
* ``ufm reproduce seli|liu|ncmc``: the reproduction recipes (tables, CSV/JSON, PNG figures).

Readable tables by default, JSON with ``--json``. Bad input: one line ``error: ...``, exit 2.
``reproduce`` exits 1 when a prediction row fails.
"""

from __future__ import annotations

import argparse

import numpy as np

from ncollapse.errors import NCollapseError

BIAS_HELP = (
    "ce/mse: add an unregularised bias b (--no-bias: none). Default: ce without, mse with "
    "(ncollapse.geometry.DEEP_LINEAR_BIAS, the same default as 'geometry deep-linear')"
)


#: What each column of `ufm sweep` means (ce rows, then mse rows).
SWEEP_LEGEND = """columns (ce):
  ‖X‖_F     norm of the logit matrix X = W H (+ b 1ᵀ) at the solution
  WH→Ẑ      ‖X/‖X‖ − Ẑ/‖Ẑ‖‖_F, distance to the SEL matrix Ẑ (Thrampoulidis et al. 2022)
  W→SELI    distance of the normalised Gram W Wᵀ to SELI's
  M→SELI    distance of the normalised Gram Hᵀ H of the class means to SELI's
  cos_min   cosine between two minority classifiers (smallest count; −1/(K−1) in the ETF, SELI's
            closed form under STEP imbalance; → 1 is minority collapse)
  iter      solver iterations
columns (mse, the L-layer deep-linear UFM of Liu, arXiv 2411.17278):
  alive (pred)  singular directions the closed form keeps (the others are zeroed)
  alive (num)   directions alive in the numerical solution
  max|Δt|       largest difference between numerical and closed-form singular values
  Gram rel err  largest relative error of W Wᵀ, Mᵀ M, W M against the closed form
  global        objective within 1e-9 (relative) of the closed-form global minimum
--json prints every value at full precision."""


def _parse_list(text, name: str, kind=float) -> list:
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(p == "" for p in parts):
        raise NCollapseError(f"{name}={text!r} is not a comma-separated list; pass e.g. 1,0.1,0.01")
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError as exc:
            raise NCollapseError(f"{name}={text!r}: {p!r} is not a number") from exc
        if not np.isfinite(v):
            raise NCollapseError(f"{name}={text!r}: {p!r} is not finite")
        if kind is int:
            if v != round(v):
                raise NCollapseError(f"{name}={text!r}: {p!r} is not an integer")
            v = int(v)
        out.append(v)
    return out


def _counts(text, name="--counts"):
    vals = _parse_list(text, name, kind=int)
    bad = [v for v in vals if v <= 0]
    if bad:
        raise NCollapseError(
            f"{name}={text!r}: class count {bad[0]} is not positive; every class needs >= 1 sample "
            "(drop empty classes)"
        )
    return vals


def register(subparsers) -> None:
    from ncollapse.cli import add_json_flag

    p = subparsers.add_parser(
        "ufm",
        help="UFM laboratory: solve CE/MSE/NCMC unconstrained-features models, sweeps, recipes",
        description="Unconstrained-features models (SELI CE+ridge, Liu deep-linear MSE, NCMC "
        "Loss P): batched solvers in float64 and theory-vs-numerics recipes.",
    )
    sub = p.add_subparsers(dest="ufm_command", metavar="UFM")
    sub.required = True

    s = sub.add_parser("solve", help="solve one UFM and compare with its closed form / optimum")
    s.add_argument("--model", choices=["ce", "mse", "ncmc"], required=True)
    s.add_argument("--counts", required=True, help="comma-separated class counts, e.g. 10,10,1,1")
    s.add_argument(
        "--lambda",
        dest="lam",
        type=float,
        default=None,
        help="ridge strength for W and H (CE: sum-CE convention; mse: each factor)",
    )
    s.add_argument("--lambda-w", type=float, default=None, help="ridge on W (with --lambda-h)")
    s.add_argument("--lambda-h", type=float, default=None, help="ridge on H (with --lambda-w)")
    s.add_argument("--lambda-b", type=float, default=None, help="ridge on the bias (default 0)")
    s.add_argument("--layers", type=int, default=None, help="mse only: number of layers L")
    s.add_argument("--bias", action=argparse.BooleanOptionalAction, default=None, help=BIAS_HELP)
    s.add_argument(
        "--no-global",
        action="store_true",
        help="mse only: one descent run (default with lbfgs: multi-start + rank "
        "deflation, which finds the global minimum for L >= 2)",
    )
    s.add_argument("--d", type=int, default=None, help="feature dimension (default K; ncmc F+K)")
    s.add_argument("--f", type=int, default=None, help="ncmc only: average centers per class")
    s.add_argument(
        "--theta",
        type=float,
        default=None,
        help="ncmc only: frame angle in radians (default pi/2 - 0.2: the paper's 0.2 read from w_k)",
    )
    s.add_argument("--al", action="store_true", help="ncmc only: f_k = f (AL) instead of CAL")
    s.add_argument("--solver", choices=["lbfgs", "gd", "convex"], default="lbfgs")
    s.add_argument(
        "--features",
        choices=["class", "sample"],
        default="class",
        help="class-level columns (default) or one column per sample",
    )
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.add_argument("--seed", type=int, default=0, help="init seed")
    s.add_argument(
        "--tol",
        type=float,
        default=None,
        help="gradient-norm tolerance >= 0 (default: lbfgs 1e-10, gd 1e-9, convex 1e-12)",
    )
    s.add_argument("--max-iter", type=int, default=None, help="iteration cap >= 1")
    s.add_argument("--lr", type=float, default=None, help="gd only: step size (default 0.05)")
    s.add_argument("--momentum", type=float, default=None, help="gd only: heavy ball (0.9)")
    add_json_flag(s)
    s.set_defaults(func=_cmd_solve)

    w = sub.add_parser(
        "sweep",
        help="solve a grid (λ × R × seeds, or λ × L) as one batch",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=SWEEP_LEGEND,
    )
    w.add_argument("--model", choices=["ce", "mse"], required=True)
    w.add_argument(
        "--counts-step",
        default=None,
        help="ce: STEP profile K_MAJ,K_MIN[,N_MIN] (counts R·n_min and n_min)",
    )
    w.add_argument("--counts", default=None, help="mse: comma-separated class counts")
    w.add_argument("--lambdas", required=True, help="comma-separated λ values")
    w.add_argument("--R", default="1", help="ce: comma-separated imbalance ratios R >= 1")
    w.add_argument("--layers", default=None, help="mse: comma-separated depths (default 1)")
    w.add_argument("--seeds", default="0", help="comma-separated init seeds")
    w.add_argument("--solver", choices=["lbfgs", "gd", "convex"], default="lbfgs")
    w.add_argument("--bias", action=argparse.BooleanOptionalAction, default=None, help=BIAS_HELP)
    w.add_argument(
        "--no-global",
        action="store_true",
        help="mse: one descent per problem (default: multi-start + rank deflation)",
    )
    w.add_argument("--d", type=int, default=None)
    w.add_argument("--device", default="cpu")
    w.add_argument("--tol", type=float, default=None, help="gradient-norm tolerance >= 0")
    w.add_argument("--max-iter", type=int, default=None, help="iteration cap >= 1")
    add_json_flag(w)
    w.set_defaults(func=_cmd_sweep)

    r = sub.add_parser(
        "reproduce",
        help="run a reproduction recipe: seli, liu or ncmc (catalogue ids seli-ufm, liu-ufm, "
        "ncmc-ufm in ncollapse.reproduce)",
    )
    r.add_argument("recipe", choices=["seli", "liu", "ncmc"])
    r.add_argument("--out", default=None, help="output folder (default ./outputs/ufm/<recipe>)")
    r.add_argument("--quick", action="store_true", help="tiny grids (smoke test)")
    r.add_argument("--device", default="cpu")
    add_json_flag(r)
    r.set_defaults(func=_cmd_reproduce)


# ----------------------------------------------------------------------------------- solve
def _check_flags(a) -> None:
    m = a.model
    if a.layers is not None and m != "mse":
        raise NCollapseError(f"--layers applies to --model mse only, not --model {m}")
    if a.no_global and m != "mse":
        raise NCollapseError(f"--no-global applies to --model mse only, not --model {m}")
    if a.bias is not None and m == "ncmc":
        raise NCollapseError("--bias does not apply to --model ncmc (Loss P has no bias)")
    if m != "ncmc" and (a.f is not None or a.theta is not None or a.al):
        raise NCollapseError(f"--f/--theta/--al apply to --model ncmc only, not --model {m}")
    if m == "ncmc" and (a.lambda_w is not None or a.lambda_b is not None):
        raise NCollapseError("--model ncmc has a fixed frame: give --lambda (the λ_H of Loss P)")
    if a.lambda_b is not None and not _bias(a):
        raise NCollapseError("--lambda-b needs --bias")
    if a.lambda_b and m == "mse" and a.solver == "lbfgs" and not a.no_global:
        raise NCollapseError(
            "--lambda-b needs --no-global for --model mse (the global search and the closed form "
            "assume an unregularised bias)"
        )
    if a.solver == "convex" and m != "ce":
        raise NCollapseError(f"--solver convex exists for --model ce only, not --model {m}")
    if a.solver != "gd" and (a.lr is not None or a.momentum is not None):
        raise NCollapseError("--lr/--momentum apply to --solver gd only")


def _bias(a) -> bool:
    """--bias / --no-bias, else the model's library default (mse: DEEP_LINEAR_BIAS; ce: CE_BIAS)."""
    if a.bias is not None:
        return bool(a.bias)
    if a.model == "mse":
        from ncollapse.geometry import DEEP_LINEAR_BIAS

        return DEEP_LINEAR_BIAS
    from ncollapse.ufm.models import CE_BIAS

    return CE_BIAS


def _options(a, **extra):
    """The one SolverOptions of a command (validates --tol, --max-iter, --lr, --momentum)."""
    from ncollapse.ufm import SolverOptions

    kw = {
        "solver": a.solver,
        "tol": a.tol,
        "max_iter": a.max_iter,
        "lr": getattr(a, "lr", None),
        "momentum": getattr(a, "momentum", None),
    }
    kw.update(extra)
    return SolverOptions.build(None, **kw)


def _cmd_solve(a) -> int:
    from ncollapse import ufm

    _check_flags(a)
    opts = _options(a, seeds=a.seed)
    counts = _counts(a.counts)
    lam = {"lam": a.lam, "lambda_w": a.lambda_w, "lambda_h": a.lambda_h}
    model = {"d": a.d, "features": a.features, "device": a.device}
    if a.model == "ce":
        bias = {"bias": _bias(a), "lambda_b": a.lambda_b or 0.0}
        sol = ufm.solve_ce(counts, **lam, **bias, **model, options=opts)
        ref = None
        if a.solver != "convex" and np.all(sol.model.lambda_eff > 0):
            ref = ufm.solve_ce_convex(counts, **lam, **bias, device=a.device)
        out = {"model": "ce", **ufm.ce_report(sol, 0, reference=ref)}
    elif a.model == "mse":
        L = 1 if a.layers is None else a.layers
        if a.solver == "lbfgs" and not a.no_global:
            sol = ufm.solve_mse_global(
                counts, **lam, layers=L, bias=_bias(a), **model, options=opts
            )
        else:
            sol = ufm.solve_mse(
                counts,
                **lam,
                layers=L,
                bias=_bias(a),
                lambda_b=a.lambda_b or 0.0,
                **model,
                options=opts,
            )
        out = {"model": "mse", **ufm.mse_report(sol, 0)}
    else:
        if a.lambda_h is not None and a.lam is not None:
            raise NCollapseError("give --lambda or --lambda-h for --model ncmc, not both")
        lh = a.lam if a.lam is not None else a.lambda_h
        if lh is None:
            raise NCollapseError("--model ncmc needs --lambda (λ_H of Loss P), e.g. --lambda 1e-4")
        f = 3 if a.f is None else a.f
        from ncollapse.geometry import NCMC_THETA

        th = NCMC_THETA if a.theta is None else a.theta
        sol = ufm.solve_ncmc(counts, lh, f=f, theta=th, class_aware=not a.al, **model, options=opts)
        out = {"model": "ncmc", **ufm.ncmc_report(sol, 0)}
    if a.json:
        from ncollapse.output import print_json

        print_json(out)
        return 0
    _print_solve(out)
    return 0


def _print_solve(out: dict) -> None:
    from ncollapse.output import print_matrix, print_table

    keys = [
        "model",
        "solver",
        "objective",
        "grad_norm",
        "residual",
        "iterations",
        "converged",
        "time_s",
        "zero_threshold",
    ]
    print_table("ufm solve", ["field", "value"], [[k, out[k]] for k in keys if k in out])
    if out["model"] == "ce":
        print_table(
            "geometry (distances: normalised Frobenius)",
            ["quantity", "value"],
            list(out["geometry"].items()),
        )
        if "vs_convex" in out:
            print_table(
                "vs exact convex optimum", ["quantity", "value"], list(out["vs_convex"].items())
            )
        print_matrix("W M (class-mean logits without bias; columns = classes)", out["WM"])
    elif out["model"] == "mse":
        cf, nu = out["closed_form"], out["numerics"]
        print_table(
            "singular values t_i of W M D",
            ["i", "sigma", "t closed form", "t numerics"],
            [[i, cf["sigma"][i], cf["t"][i], nu["t"][i]] for i in range(len(cf["t"]))],
        )
        print_table("errors vs closed form", ["quantity", "value"], list(out["errors"].items()))
        if not out["at_global_minimum"]:
            print(
                "note: the solver stopped in a local minimum (objective above the closed form's);"
                " drop --no-global"
            )
    else:
        p, nu = out["prediction"], out["numerics"]
        print_table(
            "NCMC Loss P vs Cor. 3.7",
            [
                "class",
                "f_k",
                "‖h_k‖ Cor. 3.7",
                "‖h_k‖ numerics",
                "cos(h,w̄) num",
                "cos(h,w_k) pred",
                "cos(h,w_k) num",
            ],
            [
                [
                    k,
                    out["f_counts"][k],
                    p["h_norms"][k],
                    nu["h_norms"][k],
                    nu["cos_h_wbar"][k],
                    p["cos_h_w0"][k],
                    nu["cos_h_w0"][k],
                ]
                for k in range(len(p["h_norms"]))
            ],
        )
        print_table("errors", ["quantity", "value"], list(out["errors"].items()))


# ----------------------------------------------------------------------------------- sweep
def _cmd_sweep(a) -> int:
    from ncollapse import ufm

    lambdas = _parse_list(a.lambdas, "--lambdas")
    seeds = _parse_list(a.seeds, "--seeds", kind=int)
    opts = _options(a)
    if a.model == "ce":
        if a.counts_step is None:
            raise NCollapseError("--model ce sweeps STEP profiles: pass --counts-step K_MAJ,K_MIN")
        if a.counts is not None or a.layers is not None or a.no_global:
            raise NCollapseError("--counts/--layers/--no-global apply to --model mse sweeps")
        st = _parse_list(a.counts_step, "--counts-step", kind=int)
        if len(st) not in (2, 3):
            raise NCollapseError(f"--counts-step={a.counts_step!r}: give K_MAJ,K_MIN[,N_MIN]")
        n_min = st[2] if len(st) == 3 else 1
        rows = ufm.sweep_ce(
            k_maj=st[0],
            k_min=st[1],
            n_min=n_min,
            Rs=_parse_list(a.R, "--R"),
            lambdas=lambdas,
            seeds=seeds,
            bias=_bias(a),
            d=a.d,
            device=a.device,
            options=opts,
        )
        cols = [
            "R",
            "lambda",
            "seed",
            "norm_X",
            "dist_WH_Z",
            "dist_W_seli",
            "dist_M_seli",
            "cos_w_min_min",
            "iterations",
        ]
        heads = ["R", "λ", "seed", "‖X‖_F", "WH→Ẑ", "W→SELI", "M→SELI", "cos_min", "iter"]
    else:
        if a.counts is None:
            raise NCollapseError("--model mse needs --counts, e.g. --counts 200,100,50,50")
        if a.counts_step is not None or a.R != "1":
            raise NCollapseError("--counts-step/--R apply to --model ce sweeps")
        if a.solver == "convex":
            raise NCollapseError("--solver convex exists for --model ce only")
        if a.solver != "lbfgs" and not a.no_global:
            raise NCollapseError("the global search uses L-BFGS: add --no-global for --solver gd")
        layers = [1] if a.layers is None else _parse_list(a.layers, "--layers", kind=int)
        rows = ufm.sweep_mse(
            _counts(a.counts),
            layers=layers,
            lambdas=lambdas,
            bias=_bias(a),
            seeds=seeds,
            d=a.d,
            global_search=not a.no_global,
            device=a.device,
            options=opts,
        )
        for r in rows:
            r["gram_rel"] = max(r["WWt_rel"], r["MtM_rel"], r["WM_rel"])
        cols = [
            "layers",
            "lambda",
            "seed",
            "alive_pred",
            "alive_num",
            "t_abs",
            "gram_rel",
            "at_global_minimum",
        ]
        heads = [
            "L",
            "λ",
            "seed",
            "alive (pred)",
            "alive (num)",
            "max|Δt|",
            "Gram rel err",
            "global",
        ]
    if a.json:
        from ncollapse.output import print_json

        print_json({"model": a.model, "solver": a.solver, "rows": rows})
        return 0
    from ncollapse.output import print_table

    def cell(v):
        # compact text so the table fits 80 columns (full precision: --json)
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "—"
        if isinstance(v, list):
            return " ".join(f"{x:.4g}" for x in v)
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"
        return v

    t = rows[0].get("batch_time_s", 0.0) if rows else 0.0
    print_table(
        f"ufm sweep --model {a.model}: {len(rows)} problems, one batch per shape, "
        f"{t:.2f} s (all columns: --json)",
        heads,
        [[cell(r.get(c)) for c in cols] for r in rows],
    )
    return 0


# ------------------------------------------------------------------------------- reproduce
def _cmd_reproduce(a) -> int:
    from ncollapse.reproduce import UFM_COMMANDS, run_reproduction
    from ncollapse.ufm.models import resolve_device

    resolve_device(a.device)
    summary = run_reproduction(UFM_COMMANDS[a.recipe], a.out, quick=a.quick, device=a.device)
    if a.json:
        from ncollapse.output import print_json

        print_json(summary)
    else:
        import json
        from pathlib import Path

        from ncollapse.output import print_table

        res = json.loads((Path(summary["out_dir"]) / "results.json").read_text())
        sections: dict[str, list[int]] = {}
        for r in res["rows"]:
            c = sections.setdefault(r["section"], [0, 0])
            c[0] += 1
            c[1] += bool(r["ok"])
        print_table(
            f"ufm reproduce {a.recipe}: {summary['passed']}/{summary['rows']} predictions hold "
            f"in {summary['time_s']} s",
            ["section", "rows", "hold"],
            [[k, v[0], v[1]] for k, v in sections.items()],
        )
        bad = [r for r in res["rows"] if not r["ok"]]
        if bad:
            print_table(
                "failed predictions",
                ["quantity", "setting", "prediction", "numerics", "tol"],
                [
                    [r["quantity"], r["setting"], r["prediction"], r["numerics"], r["tol"]]
                    for r in bad
                ],
            )
        out = Path(summary["out_dir"])
        print(f"table: {out / 'predictions.md'}  (also predictions.csv, results.json)")
        print("files: " + ", ".join(summary["files"]))
    return 0 if summary["all_ok"] else 1
