"""Benchmark of the NC metric pass: float32 input at float32 speed with float64 accuracy (issue 14).

Data: N = 100,000 float32 features, d = 512, K = 100 (``--quick``: 20,000 / 128 / 20), in batches
of 10,000, a classifier W (K x d) and bias b. Two data sets:

* ``near``: near collapse -- class means of norm 100, within-class spread 1e-3 (per sample);
* ``random``: class means 2·N(0, I), within-class N(0, I).

Timed side by side in one process, at 1 and 2 threads (interleaved repeats, best of each):

* one float64 ``X.T @ X`` (the unit of every ratio) and one float32 ``X.T @ X``;
* ``ncollapse`` full pass including NC4, two ways:
  - ``fast``: ``NCStats(scatter=False)`` (counts, sums, per-class traces) + ``SecondPass`` with
    ``("nc1", "nc4")`` (float64 projection on the K − 1 mean directions, float32 classifier
    scores with a rounding bound and float64 recheck) + ``compute_all``;
  - ``scatter``: ``NCStats()`` (float64 ``dsyrk`` d x d scatter) + ``SecondPass`` with
    ``("nc4",)`` + ``compute_all``;
* NC4 alone (``SecondPass(measures=("nc4",))`` given the statistics);
* a straightforward float32 two-pass implementation of the same measures (class means; centred
  d x d Σ_W by one float32 GEMM; ``pinv(Σ_B)``; NC4 by ``argmax(XWᵀ + b)`` vs
  ``argmin cdist(X, μ)``), and the same code in float64 (the reference), both written here.

Accuracy: max relative error of every measure (NC1 sample-weighted and class-balanced, tr Σ_W,
tr Σ_B, quotient, CDNV, NC2 equinorm / equiangularity / max-angle of the means, NC3 self-duality,
NC4) against the float64 reference, for ``ncollapse`` and for the float32 two-pass.

Memory: peak resident-memory increase of a fresh process during the ``fast`` pass over N and 4N
samples generated batch by batch (so the data is never held), over the peak of the data source
alone (one generated batch of 10,000 float32 rows); goal <= 100 MB and flat in N.

Run: ``python benchmarks/run_all.py metrics`` (or ``make bench``); ``--quick`` uses small sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

FULL = dict(n=100_000, d=512, k=100, batch=10_000, n_big=400_000)
QUICK = dict(n=20_000, d=128, k=20, batch=5_000, n_big=80_000)

#: goals of issue 14
GOAL_RATIO = 1.3
GOAL_RELERR = 1e-9
GOAL_MEMORY_MB = 100.0

MEASURES = (
    "nc1",
    "nc1_class_balanced",
    "tr_within",
    "tr_between",
    "quotient",
    "cdnv",
    "equinorm",
    "equiangularity",
    "max_angle",
    "self_duality",
    "nc4",
)


# ----------------------------------------------------------------------------------- data
def _make(kind: str, n: int, d: int, k: int, seed: int = 0):
    """(X float32 N x d, y, W float64 K x d, b float64 K)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    if kind == "near":
        dirs = torch.randn(k, d, generator=g, dtype=f64)
        means = 100.0 * dirs / torch.linalg.vector_norm(dirs, dim=1, keepdim=True)
        spread = 1e-3 / d**0.5  # per coordinate: ‖h − μ_y‖ ≈ 1e-3
    else:
        means = 2.0 * torch.randn(k, d, generator=g, dtype=f64)
        spread = 1.0
    y = torch.randint(0, k, (n,), generator=g)
    y[:k] = torch.arange(k)
    X = (means[y] + spread * torch.randn(n, d, generator=g, dtype=f64)).to(torch.float32)
    mc = means - means.mean(0)
    W = mc / torch.linalg.vector_norm(mc, dim=1, keepdim=True).mean()
    W = W + 0.3 * torch.randn(k, d, generator=g, dtype=f64) / d**0.5
    b = 0.1 * torch.randn(k, generator=g, dtype=f64)
    return X, y, W, b


def _batches(X, y, batch):
    return [(X[s : s + batch], y[s : s + batch]) for s in range(0, X.shape[0], batch)]


# ------------------------------------------------------- straightforward two-pass (reference)
def two_pass(X, y, W, b, k: int, dtype) -> dict:
    """The textbook two-pass computation in ``dtype`` (float32: the fast baseline; float64: the
    reference). Independent of ncollapse."""
    import torch

    Xd = X.to(dtype)
    W = W.to(dtype)
    b = b.to(dtype)
    n, d = Xd.shape
    counts = torch.bincount(y, minlength=k).to(dtype)
    mu = torch.zeros(k, d, dtype=dtype).index_add_(0, y, Xd) / counts[:, None]  # pass 1
    Xc = Xd - mu[y]  # pass 2
    Sw = Xc.T @ Xc / n
    ss = torch.zeros(k, dtype=dtype).index_add_(0, y, (Xc * Xc).sum(1))
    Mt = mu - mu.mean(0)
    Sb = Mt.T @ Mt / k
    Sb_pinv = torch.linalg.pinv(Sb, hermitian=True)
    nc1 = torch.trace(Sw @ Sb_pinv) / k
    pred = (Xd @ W.T + b).argmax(1)
    ncc = torch.cdist(Xd, mu).argmin(1)
    nc4 = (pred == ncc).to(dtype).mean()
    return {"nc1": nc1, "ss": ss, "mu": mu, "counts": counts, "Sb_pinv": Sb_pinv, "nc4": nc4}


def _finish(raw: dict, W, k: int) -> dict:
    """The cheap K x K / K x d measures from a two-pass result (float64 numpy)."""
    import numpy as np

    mu = raw["mu"].double().numpy()
    n = raw["counts"].double().numpy()
    ss = raw["ss"].double().numpy()
    Mt = mu - mu.mean(0)
    var = ss / n
    out = {
        "nc1": float(raw["nc1"]),
        "tr_within": float(ss.sum() / n.sum()),
        "tr_between": float((Mt**2).sum() / k),
        "nc4": float(raw["nc4"]),
    }
    out["quotient"] = out["tr_within"] / out["tr_between"]
    iu = np.triu_indices(k, 1)
    d2 = ((mu[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    out["cdnv"] = float(((var[:, None] + var[None, :]) / (2 * d2))[iu].mean())
    r = np.linalg.norm(Mt, axis=1)
    out["equinorm"] = float(r.std() / r.mean())
    cos = (Mt / r[:, None]) @ (Mt / r[:, None]).T
    out["equiangularity"] = float(cos[iu].std())
    out["max_angle"] = float(np.abs(cos[iu] + 1 / (k - 1)).mean())
    Wn = W.double().numpy()
    out["self_duality"] = float(np.linalg.norm(Wn / np.linalg.norm(Wn) - Mt / np.linalg.norm(Mt)))
    return out


def reference_class_balanced(X, y, raw: dict, k: int) -> float:
    """Class-balanced NC1 (1/K) Σ_c tr(Σ_W^(c) Σ_B†)/K in float64 (untimed, for the errors)."""
    import torch

    Xc = X.double() - raw["mu"][y]
    q = ((Xc @ raw["Sb_pinv"]) * Xc).sum(1)
    per = torch.zeros(k, dtype=torch.float64).index_add_(0, y, q) / raw["counts"]
    return float(per.mean() / k)


# ----------------------------------------------------------------------------- ncollapse
def ncollapse_pass(batches, W, b, k: int, mode: str = "fast") -> dict:
    from ncollapse.metrics import NCStats, SecondPass, compute_all

    acc = NCStats(k, scatter=(mode == "scatter"), per_class_scatter=False)
    for x, y in batches:
        acc.update(x, y)
    st = acc.snapshot()
    sp = SecondPass(st, W, b, measures=("nc1", "nc4") if mode == "fast" else ("nc4",))
    for x, y in batches:
        sp.update(x, y)
    res = sp.result()
    out = compute_all(st, W, b, second=res, per_class=False)
    out["_rechecked"] = res.rechecked
    return out


def _ours_values(r: dict) -> dict:
    return {
        "nc1": r["nc1"]["nc1"],
        "nc1_class_balanced": r["nc1"]["nc1_class_balanced"],
        "tr_within": r["nc1"]["tr_within"],
        "tr_between": r["nc1"]["tr_between"],
        "quotient": r["nc1"]["quotient"],
        "cdnv": r["nc1"]["cdnv"],
        "equinorm": r["nc2"]["means"]["equinorm"],
        "equiangularity": r["nc2"]["means"]["equiangularity"],
        "max_angle": r["nc2"]["means"]["max_angle"],
        "self_duality": r["nc3"]["self_duality"],
        "nc4": r["nc4"]["agreement"],
    }


def _relerr(a, ref) -> float:
    if a is None or ref is None:
        return float("nan")
    return abs(a - ref) / abs(ref) if ref != 0 else abs(a - ref)


def accuracy(cfg: dict) -> dict:
    """Max relative error of every measure vs the float64 reference, per data set."""
    import torch

    out = {}
    for kind in ("near", "random"):
        X, y, W, b = _make(kind, cfg["n"], cfg["d"], cfg["k"], seed=1)
        bt = _batches(X, y, cfg["batch"])
        raw = two_pass(X, y, W, b, cfg["k"], torch.float64)
        ref = _finish(raw, W, cfg["k"])
        ref["nc1_class_balanced"] = reference_class_balanced(X, y, raw, cfg["k"])
        f32 = _finish(two_pass(X, y, W, b, cfg["k"], torch.float32), W, cfg["k"])
        f32["nc1_class_balanced"] = None
        row = {}
        for mode in ("fast", "scatter"):
            r = ncollapse_pass(bt, W.numpy(), b.numpy(), cfg["k"], mode)
            vals = _ours_values(r)
            row[mode] = {m: _relerr(vals[m], ref[m]) for m in MEANS_OF(mode)}
            row[mode]["rechecked_rows"] = r["_rechecked"]
        row["float32_two_pass"] = {m: _relerr(f32[m], ref[m]) for m in MEASURES}
        row["reference"] = ref
        out[kind] = row
    return out


def MEANS_OF(mode: str):  # noqa: N802 - the measures a mode reports
    return MEASURES if mode == "fast" else tuple(m for m in MEASURES if m != "nc1_class_balanced")


# ---------------------------------------------------------------------------------- timing
def _limit_blas(n: int):
    """Give numpy/scipy's BLAS the same thread count as torch (threadpoolctl). scipy's BLAS is
    loaded first: threadpoolctl limits only the libraries already loaded, and NCStats's d x d
    scatter is a scipy ``dsyrk``."""
    import scipy.linalg.blas  # noqa: F401

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return None
    return threadpool_limits(limits=n, user_api="blas")


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _time_at(threads: int, repeat: int, fns: dict) -> dict:
    import torch

    torch.set_num_threads(threads)
    times = {name: [] for name in fns}
    with _limit_blas(threads) or _null():
        for fn in fns.values():
            fn()  # warm-up (buffers, page faults, BLAS init)
        # interleave so that load drift on a shared machine hits every entry alike
        for _ in range(repeat):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    best = {name: min(t) for name, t in times.items()}
    return {"threads": threads, "best": best, "times": times}


def timing(cfg: dict, quick: bool) -> list:
    import torch

    k = cfg["k"]
    X, y, W, b = _make("random", cfg["n"], cfg["d"], k, seed=0)
    X64 = X.double()
    bt = _batches(X, y, cfg["batch"])
    Wn, bn = W.numpy(), b.numpy()
    from ncollapse.metrics import NCStats, SecondPass

    acc = NCStats(k, scatter=False)
    for xb, yb in bt:
        acc.update(xb, yb)
    st = acc.snapshot()

    def nc4_only():
        sp = SecondPass(st, Wn, bn, measures=("nc4",))
        for xb, yb in bt:
            sp.update(xb, yb)
        return sp.result()

    fns = {
        "gemm64": lambda: X64.T @ X64,
        "gemm32": lambda: X.T @ X,
        "fast": lambda: ncollapse_pass(bt, Wn, bn, k, "fast"),
        "scatter": lambda: ncollapse_pass(bt, Wn, bn, k, "scatter"),
        "nc4_only": nc4_only,
        "two_pass32": lambda: _finish(two_pass(X, y, W, b, k, torch.float32), W, k),
        "two_pass64": lambda: _finish(two_pass(X, y, W, b, k, torch.float64), W, k),
    }
    default = int(os.environ.get("BENCH_THREADS") or torch.get_num_threads())
    out = [_time_at(t, 2 if quick else 3, fns) for t in sorted({1, max(default, 2)})]
    torch.set_num_threads(default)
    return out


# ---------------------------------------------------------------------------------- memory
def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")  # pragma: no cover - not Linux


def _memory_child(n: int, d: int, k: int, batch: int) -> dict:
    """Runs in a fresh process: the fast two-pass over n near-collapse samples generated batch by
    batch (the same seed for both passes). First the data source alone runs over all batches
    (its peak is the baseline: imports, one generated batch and its temporaries); then the pass
    runs over the same batches. The working memory is the peak increase over that baseline."""
    import torch

    from ncollapse.metrics import NCStats, SecondPass, compute_all

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    lim = _limit_blas(torch.get_num_threads())  # noqa: F841 (kept alive for the run)
    _, _, W, b = _make("near", 2 * k, d, k, seed=3)
    Wn, bn = W.numpy(), b.numpy()

    def gen():
        g = torch.Generator().manual_seed(5)
        dirs = torch.randn(k, d, generator=g)
        means = 100.0 * dirs / torch.linalg.vector_norm(dirs, dim=1, keepdim=True)
        for s in range(0, n, batch):
            m = min(batch, n - s)
            yb = torch.randint(0, k, (m,), generator=g)
            xb = torch.randn(m, d, generator=g).mul_(1e-3 / d**0.5).add_(means[yb])
            yield xb, yb

    tot = 0.0
    for xb, _ in gen():  # the data source alone
        tot += float(xb[0, 0])
    base = _rss_mb("VmHWM")
    acc = NCStats(k, d, scatter=False)
    for xb, yb in gen():
        acc.update(xb, yb)
    st = acc.snapshot()
    sp = SecondPass(st, Wn, bn, measures=("nc1", "nc4"))
    for xb, yb in gen():
        sp.update(xb, yb)
    compute_all(st, Wn, bn, second=sp.result())
    state = sum(
        v.numel() * v.element_size() for v in acc.state_dict().values() if torch.is_tensor(v)
    )
    peak = _rss_mb("VmHWM")
    return {
        "n": n,
        "peak_increase_mb": peak - base,
        "baseline_peak_mb": base,
        "peak_mb": peak,
        "state_mb": state / 2**20,
    }


def _memory(n: int, cfg: dict) -> dict:
    args = f"{n}, {cfg['d']}, {cfg['k']}, {cfg['batch']}"
    code = (
        f"import json, sys; sys.path.insert(0, {HERE!r}); import metrics as m; "
        f"print(json.dumps(m._memory_child({args})))"
    )
    # large blocks through mmap, so that freed memory leaves the resident set at once and the
    # peak reflects what was live (glibc otherwise keeps freed heap blocks and raises its
    # threshold dynamically, which makes peaks depend on allocation history)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=HERE, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------- run
def _row(case, value, unit, goal="", ok=""):
    return {"case": case, "value": value, "unit": unit, "goal": goal, "ok": ok}


def run(quick: bool = False) -> dict:
    cfg = QUICK if quick else FULL
    acc = accuracy(cfg)
    tim = timing(cfg, quick)
    mem_small = _memory(cfg["n"], cfg)
    mem_big = _memory(cfg["n_big"], cfg)
    tag = f"N={cfg['n']:,} d={cfg['d']} K={cfg['k']}, float32 input"
    rows = []
    for tm in tim:
        th = f"[{tm['threads']} thread{'s' if tm['threads'] > 1 else ''}]"
        bst = tm["best"]
        g = bst["gemm64"]
        rows.append(_row(f"{th} float64 X.T@X ({tag})", g, "s"))
        rows.append(_row(f"{th} float32 X.T@X / float64 X.T@X", bst["gemm32"] / g, "x"))
        for name, label in (
            ("fast", "ncollapse full pass incl. NC4 (scatter=False, nc1+nc4 second pass)"),
            ("scatter", "ncollapse full pass incl. NC4 (d x d dsyrk scatter, nc4 second pass)"),
        ):
            r = bst[name] / g
            rows.append(_row(f"{th} {label} / X.T@X", r, "x", f"<= {GOAL_RATIO}", r <= GOAL_RATIO))
        rows.append(_row(f"{th}   NC4 alone (second pass given the statistics) / X.T@X",
                         bst["nc4_only"] / g, "x"))  # fmt: skip
        r32 = bst["two_pass32"] / g
        rows.append(_row(f"{th} straightforward float32 two-pass / X.T@X", r32, "x"))
        rows.append(_row(f"{th} float64 two-pass reference / X.T@X", bst["two_pass64"] / g, "x"))
        sp = bst["two_pass32"] / bst["fast"]
        rows.append(_row(f"{th} float32 two-pass time / ncollapse fast pass time", sp, "x",
                         "> 1", sp > 1))  # fmt: skip
    for kind, row in acc.items():
        for mode in ("fast", "scatter"):
            errs = {m: v for m, v in row[mode].items() if m in MEASURES}
            worst = max(errs, key=lambda m: errs[m])
            e = errs[worst]
            rows.append(_row(f"[{kind}] ncollapse {mode}: max rel. error over {len(errs)} "
                             f"measures (worst: {worst})", e, "", f"<= {GOAL_RELERR:g}",
                             e <= GOAL_RELERR))  # fmt: skip
        errs = {m: v for m, v in row["float32_two_pass"].items() if v == v}
        worst = max(errs, key=lambda m: errs[m])
        rows.append(_row(f"[{kind}] float32 two-pass: max rel. error (worst: {worst})",
                         errs[worst], ""))  # fmt: skip
    for mem in (mem_small, mem_big):
        rows.append(_row(f"working memory of the fast pass, N={mem['n']:,} (peak RSS increase)",
                         mem["peak_increase_mb"], "MB", f"<= {GOAL_MEMORY_MB:g}",
                         mem["peak_increase_mb"] <= GOAL_MEMORY_MB))  # fmt: skip
    grow = mem_big["peak_increase_mb"] - mem_small["peak_increase_mb"]
    rows.append(_row(f"working memory growth {cfg['n_big'] // cfg['n']}x N", grow, "MB",
                     "flat (< 5 MB)", grow < 5))  # fmt: skip
    rows.append(_row("accumulator state (both N)", mem_big["state_mb"], "MB", "same",
                     mem_big["state_mb"] == mem_small["state_mb"]))  # fmt: skip
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = None
    return {
        "name": "metrics",
        "rows": rows,
        "config": cfg,
        "quick": quick,
        "timings": tim,
        "accuracy": acc,
        "memory": {"small": mem_small, "big": mem_big},
        "loadavg": load,
    }


if __name__ == "__main__":
    from _common import print_rows, save

    res = run(quick="--quick" in sys.argv)
    save(res)
    print_rows(res)
    print("errors per measure:")
    for kind, row in res["accuracy"].items():
        for mode in ("fast", "scatter", "float32_two_pass"):
            errs = ", ".join(
                f"{m} {v:.1e}" for m, v in row[mode].items() if m in MEASURES and v == v
            )
            print(f"  [{kind}] {mode}: {errs}")
