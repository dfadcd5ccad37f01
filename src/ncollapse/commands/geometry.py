"""``ncollapse geometry ...``: closed-form targets (ETF, SELI, STEP, deep-linear UFM, NCMC).

Every command prints readable tables, or full-precision JSON with ``--json``.
"""

from __future__ import annotations

import argparse

import numpy as np

from ncollapse.errors import NCollapseError


def parse_counts(text: str, name: str = "--counts") -> list[int]:
    """Parse ``"10,10,1,1"`` into a list of ints (one-line NCollapseError on bad input)."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(p == "" for p in parts):
        raise NCollapseError(
            f"{name}={text!r} is not a comma-separated list of class counts; pass e.g. 10,10,1,1"
        )
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError as exc:
            raise NCollapseError(
                f"{name}={text!r}: {p!r} is not a number; pass positive integers like 10,10,1,1"
            ) from exc
        if not np.isfinite(v) or v != round(v):
            raise NCollapseError(f"{name}={text!r}: {p!r} is not an integer class count")
        if v <= 0:
            raise NCollapseError(
                f"{name}={text!r}: {p!r} is not positive; every class needs at least 1 sample"
            )
        out.append(int(v))
    return out


#: ``geometry step`` rows: (JSON key, formula shown in the table).
_STEP_ROWS = [
    ("lambda_mix", "λ_mix = (k_min n_maj + k_maj n_min)/k"),
    ("w_norm_ratio", "‖w_maj‖/‖w_min‖"),
    ("mu_norm_ratio", "‖μ_maj‖/‖μ_min‖"),
    ("cos_w_min_min", "cos(w_min, w_min')"),
    ("cos_w_maj_maj", "cos(w_maj, w_maj')"),
    ("cos_w_maj_min", "cos(w_maj, w_min)"),
    ("cos_mu_min_min", "cos(μ_min, μ_min')"),
    ("cos_mu_maj_maj", "cos(μ_maj, μ_maj')"),
    ("cos_mu_maj_min", "cos(μ_maj, μ_min)"),
    ("w_maj_sq", "‖w_maj‖²"),
    ("w_min_sq", "‖w_min‖²"),
    ("mu_maj_sq", "‖μ_maj‖²"),
    ("mu_min_sq", "‖μ_min‖²"),
]


#: What every number ``geometry etf`` prints means (table column and ``--help``).
ETF_KEYS = {
    "k": "number of classes K",
    "d": "embedding dimension",
    "seed": "seed of the random orthonormal embedding",
    "norm_min": "smallest row norm ||w_k|| (1 for the unit-norm ETF)",
    "norm_max": "largest row norm ||w_k||",
    "cos_min": "smallest cosine between two different rows",
    "cos_max": "largest cosine between two different rows",
    "cos_target": "the ETF's pairwise cosine -1/(K-1)",
    "gram_max_abs_error": "max |W W^T - (K/(K-1))(I - 11^T/K)| (0 up to rounding)",
    "row_sum_norm": "||sum_k w_k|| (0: the rows are centred)",
}

#: What every number of ``geometry multicenter --d`` (frame check) means.
FRAME_KEYS = {
    "d": "dimension of the frame",
    "d_required": "F + K, the smallest d a frame fits in",
    "orthonormality_error": "max |[W0; V][W0; V]^T - I|",
    "center_norm_error": "max | ||w_j^(k)|| - 1 |",
    "same_class_cos_expected": "sin^2(theta), the cosine of two centers of one class",
    "same_class_cos_error": "max |cos(w_i^(k), w_j^(k)) - sin^2(theta)|",
    "cross_class_max_abs_cos": "max |cos| between centers of different classes (0)",
    "cos_alpha_error": "max |cos(center, class mean of centers) - cos alpha_k|",
    "cos_rho_error": "max |cos(class mean of centers, w_k) - cos rho_k|",
}

MULTICENTER_COLUMNS = {
    "f_k": "centers of class k (CAL: NCMC Sec. 3.5, classes ranked by size unless --order "
    "positional; AL: f)",
    "centers": "row indices of class k's centers in the frame",
    "cos α_k": "cosine between each center and the mean of class k's centers, "
    "sqrt((cos^2 θ + f_k sin^2 θ)/f_k)",
    "cos ρ_k": "cosine between that mean and the classifier w_k, "
    "sqrt(f_k) sin θ / sqrt(cos^2 θ + f_k sin^2 θ)",
}


def _epilog(title: str, keys: dict[str, str]) -> str:
    return title + ":\n" + "\n".join(f"  {k:<26} {v}" for k, v in keys.items())


def register(subparsers) -> None:
    from ncollapse.cli import add_json_flag

    p = subparsers.add_parser(
        "geometry",
        help="closed-form target geometries (ETF, SELI, STEP, deep-linear UFM, NCMC frames)",
        description="Closed-form neural-collapse geometries, computed in float64.",
    )
    sub = p.add_subparsers(dest="geometry_command", metavar="GEOMETRY")
    sub.required = True

    e = sub.add_parser(
        "etf",
        help="simplex ETF: Gram, norms, cosines (= -1/(K-1))",
        epilog=_epilog("printed quantities", ETF_KEYS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--k", type=int, required=True, help="number of classes K >= 2")
    e.add_argument("--d", type=int, default=None, help="embedding dimension (default K; >= K-1)")
    e.add_argument("--seed", type=int, default=0, help="seed of the random orthonormal embedding")
    e.add_argument("--matrix", action="store_true", help="also print W (K x d) and its Gram")
    add_json_flag(e)
    e.set_defaults(func=_cmd_etf)

    s = sub.add_parser("seli", help="SELI class-level geometry for a count vector")
    s.add_argument("--counts", required=True, help="comma-separated class counts, e.g. 10,10,1,1")
    add_json_flag(s)
    s.set_defaults(func=_cmd_seli)

    st = sub.add_parser(
        "step",
        help="closed-form SELI norms/cosines for a STEP profile",
        epilog=_epilog("printed quantities", {k: v for k, v in _STEP_ROWS}),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    st.add_argument("--k-maj", type=int, required=True, help="number of majority classes")
    st.add_argument("--k-min", type=int, required=True, help="number of minority classes")
    st.add_argument("--R", type=float, required=True, help="imbalance ratio n_maj/n_min >= 1")
    st.add_argument("--n-min", type=int, default=1, help="minority count (default 1)")
    add_json_flag(st)
    st.set_defaults(func=_cmd_step)

    dl = sub.add_parser("deep-linear", help="global minimizer of Liu's L-layer deep-linear MSE UFM")
    dl.add_argument("--counts", required=True, help="comma-separated class counts")
    dl.add_argument("--layers", type=int, default=1, help="number of linear layers L >= 1")
    dl.add_argument("--lambda-w", type=float, default=5e-3, help="weight decay of each W_l")
    dl.add_argument("--lambda-h", type=float, default=5e-3, help="weight decay of the features H")
    dl.add_argument(
        "--bias",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="unregularised bias b (--no-bias: the bias-free model of Dang et al. 2023); default: "
        "ncollapse.geometry.DEEP_LINEAR_BIAS, shared with 'ufm solve --model mse'",
    )
    add_json_flag(dl)
    dl.set_defaults(func=_cmd_deep_linear)

    mc = sub.add_parser(
        "multicenter",
        help="NCMC center counts, cos alpha_k, optional frame check",
        epilog=_epilog("columns", MULTICENTER_COLUMNS)
        + "\n"
        + _epilog("frame check (--d)", FRAME_KEYS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mc.add_argument(
        "--counts", required=True, help="training class counts, any order (e.g. 5000,...,50)"
    )
    mc.add_argument("--f", type=int, default=20, help="average number of centers per class (20)")
    mc.add_argument(
        "--theta",
        type=float,
        default=None,
        help="angle theta in radians (default pi/2 - 0.2 = 1.3708: the paper's 0.2 read as the "
        "angle from the class direction; 0.2 for Def. 3.2's reading)",
    )
    mc.add_argument("--mode", choices=["cal", "al"], default="cal", help="class-aware or average")
    mc.add_argument(
        "--order",
        choices=["rank", "positional"],
        default="rank",
        help="CAL: classes ranked by size (default, as the training head does) or the counts' own "
        "order (the paper's worked example)",
    )
    mc.add_argument("--d", type=int, default=None, help="build and check a frame in R^d")
    mc.add_argument("--seed", type=int, default=0, help="seed of the frame")
    add_json_flag(mc)
    mc.set_defaults(func=_cmd_multicenter)


def _matrix(title: str, m, prefix: str = "c") -> None:
    """print_matrix with row labels c0, c1, ... (so they are not formatted as numbers)."""
    from ncollapse.output import print_matrix

    m = np.asarray(m)
    print_matrix(title, m, row_labels=[f"{prefix}{i}" for i in range(m.shape[0])])


# ---------------------------------------------------------------------------------------- etf
def _cmd_etf(args: argparse.Namespace) -> int:
    from ncollapse.geometry import etf_gram, simplex_etf
    from ncollapse.output import print_json, print_table

    W = simplex_etf(args.k, args.d, seed=args.seed)
    k, d = W.shape
    G = W @ W.T
    norms = np.linalg.norm(W, axis=1)
    off = G[~np.eye(k, dtype=bool)]
    target = -1.0 / (k - 1)
    res = {
        "k": k,
        "d": d,
        "seed": args.seed,
        "norm_min": float(norms.min()),
        "norm_max": float(norms.max()),
        "cos_min": float(off.min()),
        "cos_max": float(off.max()),
        "cos_target": target,
        "gram_max_abs_error": float(np.abs(G - etf_gram(k)).max()),
        "row_sum_norm": float(np.linalg.norm(W.sum(axis=0))),
        "gram": G,
    }
    if args.matrix:
        res["W"] = W
    if args.json:
        print_json(res)
        return 0
    rows = [(key, ETF_KEYS[key], res[key]) for key in res if key not in ("gram", "W")]
    print_table(f"simplex ETF, K={k} in R^{d}", ["quantity", "meaning", "value"], rows)
    if args.matrix:
        _matrix("Gram W W^T", G)
        _matrix(f"W ({k} x {d})", W)
    return 0


# --------------------------------------------------------------------------------------- seli
def _cmd_seli(args: argparse.Namespace) -> int:
    from ncollapse.geometry import seli_geometry
    from ncollapse.output import print_json, print_table

    g = seli_geometry(parse_counts(args.counts))
    if args.json:
        print_json(g.to_dict())
        return 0
    k = g.counts.size
    print_table(
        f"SELI per class (counts {','.join(map(str, g.counts.tolist()))})",
        ["class", "n", "||w||", "||mu||", "||w||/||w_0||", "||mu||/||mu_0||"],
        (
            (
                i,
                int(g.counts[i]),
                g.w_norms[i],
                g.mu_norms[i],
                g.w_norms[i] / g.w_norms[0],
                g.mu_norms[i] / g.mu_norms[0],
            )
            for i in range(k)
        ),
    )
    print_table(
        "spectrum of Ẑ = PY",
        ["i", "sigma", "sigma^2"],
        ((i, s, s * s) for i, s in enumerate(g.singular_values)),
    )
    _matrix("G_W = W W^T = (P D_n P)^{1/2}", g.G_W)
    _matrix("G_M = M^T M = (P D_n P)^{+1/2}", g.G_M)
    _matrix("W M (= P)", g.WM)
    _matrix("cos(w_i, w_j)", g.cos_W)
    _matrix("cos(mu_i, mu_j)", g.cos_M)
    return 0


# --------------------------------------------------------------------------------------- step


def _cmd_step(args: argparse.Namespace) -> int:
    from ncollapse.geometry import step_counts, step_seli_closed_form
    from ncollapse.output import print_json, print_table

    res = step_seli_closed_form(args.k_maj, args.k_min, args.R, args.n_min)
    res["counts"] = step_counts(args.k_maj, args.k_min, args.R, args.n_min)
    if args.json:
        print_json(res)
        return 0
    title = (
        f"SELI STEP closed form: k_maj={res['k_maj']}, k_min={res['k_min']}, R={res['R']:g}, "
        f"n_maj={res['n_maj']}, n_min={res['n_min']}"
    )
    print_table(
        title, ["quantity", "key", "value"], ((lbl, key, res[key]) for key, lbl in _STEP_ROWS)
    )
    return 0


# -------------------------------------------------------------------------------- deep-linear
def _cmd_deep_linear(args: argparse.Namespace) -> int:
    from ncollapse.geometry import deep_linear_ufm, stationary_threshold
    from ncollapse.output import print_json, print_table

    sol = deep_linear_ufm(
        parse_counts(args.counts),
        layers=args.layers,
        lambda_w=args.lambda_w,
        lambda_h=args.lambda_h,
        **({} if args.bias is None else {"bias": args.bias}),
    )
    N = float(sol.counts.sum())
    res = sol.to_dict()
    res["stationary_threshold"] = stationary_threshold(N, sol.c, sol.layers)
    res["n_total"] = N
    if args.json:
        print_json(res)
        return 0
    k = sol.counts.size
    kind = "with bias (Ŷ = (I - n1ᵀ/N)D)" if sol.bias else "bias-free (Ŷ = D)"
    print_table(
        "deep-linear UFM: global minimizer",
        ["quantity", "value"],
        [
            ("model", kind),
            ("layers L", sol.layers),
            ("λ_W, λ_H", f"{sol.lambda_w:g}, {sol.lambda_h:g}"),
            ("N", int(N)),
            ("c = (λ_W^L λ_H)^(1/(L+1))", sol.c),
            ("global threshold σ*", sol.threshold),
            ("stationary threshold σ_stat", res["stationary_threshold"]),
            ("zeroed directions", str(np.flatnonzero(sol.zeroed).tolist())),
        ],
    )
    print_table(
        "singular values of Ŷ and their shrinkage",
        ["i", "sigma_i", "t_i", "zeroed", "w_i", "h_i", "layer s.v."],
        (
            (
                i,
                sol.sigma[i],
                sol.t[i],
                bool(sol.zeroed[i]),
                sol.w_singular_values[i],
                sol.h_singular_values[i],
                sol.layer_singular_values[i],
            )
            for i in range(k)
        ),
    )
    print_table(
        "per class",
        ["class", "n", "b", "||w||", "||mu||"],
        ((i, int(sol.counts[i]), sol.b[i], sol.w_norms[i], sol.mu_norms[i]) for i in range(k)),
    )
    _matrix("W W^T", sol.WWt)
    _matrix("M^T M", sol.MtM)
    _matrix("W M", sol.WM)
    _matrix("class-mean logits W M + b 1^T (columns = classes)", sol.logits)
    return 0


# -------------------------------------------------------------------------------- multicenter
def _frame_check(fr) -> dict:
    K = fr.W0.shape[0]
    F = fr.V.shape[0]
    Q = np.vstack([fr.W0, fr.V])
    ortho = float(np.abs(Q @ Q.T - np.eye(K + F)).max())
    C = fr.centers
    G = C @ C.T
    same = fr.center_class[:, None] == fr.center_class[None, :]
    off_same = same & ~np.eye(F, dtype=bool)
    s2 = float(np.sin(fr.theta) ** 2)
    mean_hat = fr.mean_centers / np.linalg.norm(fr.mean_centers, axis=1, keepdims=True)
    cos_a_direct = np.einsum("fd,fd->f", C, mean_hat[fr.center_class])
    cos_r_direct = np.einsum("kd,kd->k", mean_hat, fr.W0)
    return {
        "d": int(C.shape[1]),
        "d_required": F + K,
        "orthonormality_error": ortho,
        "center_norm_error": float(np.abs(np.linalg.norm(C, axis=1) - 1).max()),
        "same_class_cos_expected": s2,
        "same_class_cos_error": float(np.abs(G[off_same] - s2).max()) if off_same.any() else 0.0,
        "cross_class_max_abs_cos": float(np.abs(G[~same]).max()) if (~same).any() else 0.0,
        "cos_alpha_error": float(np.abs(cos_a_direct - fr.cos_alpha[fr.center_class]).max()),
        "cos_rho_error": float(np.abs(cos_r_direct - fr.cos_rho).max()),
    }


def _cmd_multicenter(args: argparse.Namespace) -> int:
    from ncollapse.geometry import NCMC_THETA, center_counts, cos_alpha, cos_rho, multicenter_frame
    from ncollapse.output import print_json, print_table
    from ncollapse.validation import check_counts

    if args.theta is None:
        args.theta = NCMC_THETA
    n = check_counts(parse_counts(args.counts))
    K = n.size
    fk = center_counts(args.mode, K, args.f, counts=n, order=args.order)
    ca = cos_alpha(fk, args.theta)
    cr = cos_rho(fk, args.theta)
    F = int(fk.sum())
    starts = np.concatenate([[0], np.cumsum(fk)[:-1]])
    res = {
        "mode": args.mode,
        "order": args.order,
        "f": args.f,
        "theta": args.theta,
        "counts": n,
        "f_counts": fk,
        "F": F,
        "d_required": F + K,
        "cos_alpha": ca,
        "cos_rho": cr,
        "same_class_center_cos": float(np.sin(args.theta) ** 2),
        "center_index_start": starts,
    }
    if args.d is not None:
        fr = multicenter_frame(fk, args.d, args.theta, seed=args.seed)
        res["frame_check"] = _frame_check(fr)
        res["seed"] = args.seed
    if args.json:
        print_json(res)
        return 0
    print_table(
        f"NCMC {args.mode.upper()} centers, f={args.f}, θ={args.theta:g}",
        ["class", "n", "f_k", "centers", "cos α_k", "cos ρ_k"],
        (
            (i, int(n[i]), int(fk[i]), f"{starts[i]}..{starts[i] + fk[i] - 1}", ca[i], cr[i])
            for i in range(K)
        ),
    )
    print(
        f"F = {F} centers; a frame needs d >= F+K = {F + K}; cos α_k: center vs its class mean, "
        f"cos ρ_k: class mean vs w_k (see --help)"
    )
    if "frame_check" in res:
        print_table(
            f"frame check (d={args.d}, seed={args.seed})",
            ["check", "meaning", "value"],
            [(key, FRAME_KEYS[key], v) for key, v in res["frame_check"].items()],
        )
    return 0
