"""Benchmark of the batched UFM solvers (issue 3, §5).

* 64 CE-UFM problems (8 lambdas x 8 imbalance ratios R; STEP k = 10, 5 majority / 5 minority
  classes, n_min = 1), solved as ONE batched problem against a sequential Python loop over the
  same 64 problems with the same solver and the same gradient-norm tolerance. Goal: >= 10x.
  Done for the factorised L-BFGS (class-level features, d = K) and, as extra rows, for the
  convex class-level FISTA solver.
* Time for the batched L-BFGS solve until every problem is within a normalised Gram distance of
  1e-3 (max over W W^T and M^T M) of the exact class-level optimum (the convex solution), read
  off a per-iteration history; for batched heavy-ball gradient descent (lr 0.05) the time until
  half of the problems are there and the fraction after 20,000 steps (informational, no goal).
* Timings are the best of several runs (the machine may be shared); ``BENCH_THREADS`` sets the
  torch threads (default 1).

Run: ``python benchmarks/run_all.py ufm``; ``--quick`` uses 4 x 4 problems.
"""

from __future__ import annotations

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from _common import best_of  # noqa: E402

LAMBDAS = [0.5, 0.2, 0.1, 3e-2, 1e-2, 1e-3, 1e-4, 1e-5]  # all below sigma_max(Zhat) >= 1
RS = [1, 2, 3, 5, 10, 20, 50, 100]
TOL = 1e-9


def _grid(quick):
    from ncollapse import geometry as geo

    lams = LAMBDAS[::2] if quick else LAMBDAS
    Rs = RS[::2] if quick else RS
    grid = [(R, lam) for R in Rs for lam in lams]
    counts = np.stack([geo.step_counts(5, 5, R, 1) for R, _ in grid])
    return grid, counts, np.array([g[1] for g in grid])


def _dist_fn(model, ref_WW, ref_MM):
    """Per-problem max normalised distance of W W^T and M^T M to reference Grams (torch)."""
    import torch

    rW = torch.as_tensor(ref_WW)
    rM = torch.as_tensor(ref_MM)
    rW = rW / rW.flatten(1).norm(dim=1)[:, None, None]
    rM = rM / rM.flatten(1).norm(dim=1)[:, None, None]

    def fn(p):
        W = p["W"]
        M = model.class_means(model.features_from(p["G"]))
        WW = torch.bmm(W, W.transpose(1, 2))
        MM = torch.bmm(M.transpose(1, 2), M)
        dW = WW / WW.flatten(1).norm(dim=1).clamp_min(1e-300)[:, None, None] - rW
        dM = MM / MM.flatten(1).norm(dim=1).clamp_min(1e-300)[:, None, None] - rM
        return {"dist_opt": torch.maximum(dW.flatten(1).norm(dim=1), dM.flatten(1).norm(dim=1))}

    return fn


def _time_to(hist, thr):
    d = hist["dist_opt"]  # (T, B)
    ok = np.all(d <= thr, axis=1)
    if not ok.any():
        return float("nan"), float(np.mean(d[-1] <= thr))
    j = int(np.argmax(ok))
    return float(hist["time_s"][j]), 1.0


def run(quick: bool = False) -> dict:
    import torch

    from ncollapse.ufm import CERidgeUFM, SolverOptions, gradient_descent, lbfgs, solve_ce_convex

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    grid, counts, lams = _grid(quick)
    B = len(grid)
    rows = []

    # --- factorised L-BFGS: batched vs sequential ------------------------------------------
    # one SolverOptions for every solve of the comparison (per-problem seeds replaced below)
    opts = SolverOptions(tol=TOL, seeds=np.arange(B), history=False)

    def batched_lbfgs():
        return lbfgs(CERidgeUFM(counts, lams), opts)

    def sequential_lbfgs():
        return [lbfgs(CERidgeUFM(counts[i], lams[i]), opts, seeds=i) for i in range(B)]

    # best of several runs: the machine is shared, so single timings are noisy
    sb = batched_lbfgs()
    seq = sequential_lbfgs()
    t_batch = best_of(batched_lbfgs, repeat=5, warmup=0)
    t_seq = best_of(sequential_lbfgs, repeat=1 if quick else 2, warmup=0)
    same = max(
        float(np.max(np.abs(sb.WWt()[i] - s.WWt()[0]) / np.abs(s.WWt()[0]).max()))
        for i, s in enumerate(seq)
    )
    conv = int(sb.converged.sum())
    rows += [
        {
            "case": f"L-BFGS {B} problems batched",
            "value": t_batch,
            "unit": "s",
            "goal": "",
            "ok": conv == B,
        },
        {
            "case": f"L-BFGS {B} problems sequential loop",
            "value": t_seq,
            "unit": "s",
            "goal": "",
            "ok": all(bool(s.converged[0]) for s in seq),
        },
        {
            "case": "L-BFGS speed-up (sequential / batched)",
            "value": t_seq / t_batch,
            "unit": "x",
            "goal": ">= 10",
            "ok": t_seq / t_batch >= 10,
        },
        {
            "case": "L-BFGS batched vs sequential: max rel. diff of W W^T",
            "value": same,
            "unit": "",
            "goal": "<= 1e-6",
            "ok": same <= 1e-6,
        },
    ]

    # --- convex FISTA: batched vs sequential -------------------------------------------------
    cvx = solve_ce_convex(counts, lams, tol=1e-12)
    t_cb = best_of(lambda: solve_ce_convex(counts, lams, tol=1e-12), repeat=5, warmup=0)
    t_cs = best_of(
        lambda: [solve_ce_convex(counts[i], lams[i], tol=1e-12) for i in range(B)],
        repeat=1 if quick else 2,
        warmup=0,
    )
    rows += [
        {
            "case": f"convex FISTA {B} problems batched",
            "value": t_cb,
            "unit": "s",
            "goal": "",
            "ok": bool(cvx.converged.all()),
        },
        {
            "case": "convex FISTA speed-up (sequential / batched)",
            "value": t_cs / t_cb,
            "unit": "x",
            "goal": ">= 10",
            "ok": t_cs / t_cb >= 10,
        },
    ]

    # --- time to normalised distance 1e-3 from the exact optimum -----------------------------
    ref_WW, ref_MM = cvx.WWt(), cvx.MtM()
    m = CERidgeUFM(counts, lams)
    sol = lbfgs(m, opts, history=True, history_ratio=1.0, metrics_fn=_dist_fn(m, ref_WW, ref_MM))
    t_l, frac_l = _time_to(sol.history, 1e-3)
    it_l = int(sol.history["iteration"][int(np.argmax(np.all(sol.history["dist_opt"] <= 1e-3, 1)))])
    fin = float(sol.history["dist_opt"][-1].max())
    rows += [
        {
            "case": f"L-BFGS batched: time until all {B} within 1e-3 of the optimum "
            "(instrumented run: distances computed every iteration)",
            "value": t_l,
            "unit": "s",
            "goal": "",
            "ok": frac_l == 1.0,
        },
        {
            "case": "L-BFGS batched: iterations until all within 1e-3",
            "value": it_l,
            "unit": "it",
            "goal": "",
            "ok": None,
        },
        {
            "case": "L-BFGS batched: final max distance to the optimum",
            "value": fin,
            "unit": "",
            "goal": "<= 1e-5",
            "ok": fin <= 1e-5,
        },
    ]
    m = CERidgeUFM(counts, lams)
    gd_iters = 2000 if quick else 20000
    gd_opts = SolverOptions(
        solver="gd",
        lr=0.05,
        momentum=0.9,
        tol=TOL,
        max_iter=gd_iters,
        seeds=np.arange(B),
        history_ratio=1.02,
    )
    gd = gradient_descent(m, gd_opts, metrics_fn=_dist_fn(m, ref_WW, ref_MM))
    d = gd.history["dist_opt"]
    half = np.mean(d <= 1e-3, axis=1) >= 0.5
    t_half = float(gd.history["time_s"][int(np.argmax(half))]) if half.any() else float("nan")
    rows += [
        {
            "case": f"GD (lr 0.05, momentum 0.9) batched: time until half of {B} within 1e-3 "
            "(instrumented run)",
            "value": t_half,
            "unit": "s",
            "goal": "",
            "ok": None,
        },
        {
            "case": f"GD batched: fraction within 1e-3 after {gd_iters} steps",
            "value": float(np.mean(d[-1] <= 1e-3)),
            "unit": "",
            "goal": "",
            "ok": None,
        },
    ]
    return {
        "name": "ufm",
        "rows": rows,
        "problems": {
            "k_maj": 5,
            "k_min": 5,
            "n_min": 1,
            "R": sorted({g[0] for g in grid}),
            "lambda": sorted({g[1] for g in grid}),
            "d": 10,
            "tol": TOL,
        },
        "lbfgs_iterations_batched": sb.iterations.tolist(),
        "torch_threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    from _common import print_rows, save

    res = run(quick="--quick" in sys.argv)
    save(res)
    print_rows(res)
