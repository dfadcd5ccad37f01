"""Benchmark of ``ncollapse.measure`` (issue 13, item 6).

A CIFAR ResNet-32 (ncollapse's ``resnet32`` backbone + linear head, 10 classes, eval mode) over
N = 10,000 CIFAR-shaped images (3 x 32 x 32, float32, in memory, batches of 500). The limit is the
two bare forward passes ``measure`` needs (NC statistics, then NC4 / per-class NC1):
``with torch.no_grad(): model(x)`` twice over the data. Cases:

* ``measure(model, data, cache_bytes=0)`` -- the model runs twice, as in the limit (goal <= 1.25x);
* ``measure(model, data)`` (default) -- the first pass's features (10,000 x 64 float32 = 2.6 MB)
  are cached, so the model runs once: reported against two bare passes and against one.

Each timing is the best of ``repeat`` runs (2 at full size, ``BENCH_REPEAT`` to change), the cases
interleaved in palindromic order so that a busy machine moves every side alike. Run: ``python benchmarks/run_all.py measure`` (``--quick``: N = 1,000).
"""

from __future__ import annotations

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

FULL = dict(n=10_000, batch=500, repeat=int(os.environ.get("BENCH_REPEAT", "2")))
QUICK = dict(n=1_000, batch=250, repeat=2)
GOAL = 1.25


def run(quick: bool = False) -> dict:
    import torch

    import ncollapse
    from ncollapse.models import build_model

    cfg = QUICK if quick else FULL
    n, bs = cfg["n"], cfg["batch"]
    torch.manual_seed(0)
    model = build_model({"backbone": "resnet32", "head": "linear", "num_classes": 10}).eval()
    g = torch.Generator().manual_seed(1)
    X = torch.rand(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    batches = [(X[s : s + bs], y[s : s + bs]) for s in range(0, n, bs)]

    def bare(passes: int):
        with torch.no_grad():
            for _ in range(passes):
                for xb, _yb in batches:
                    model(xb)

    def meas(**kw):
        return ncollapse.measure(model, batches, progress=False, verbose=False, **kw)

    cases = {
        "bare2": lambda: bare(2),
        "bare1": lambda: bare(1),
        "measure_nocache": lambda: meas(cache_bytes=0),
        "measure": lambda: meas(),
    }
    bare(1)  # warm-up
    best = {k: float("inf") for k in cases}
    for rep in range(cfg["repeat"]):
        # palindromic order (A B C D, D C B A, ...): a load that drifts during the run moves
        # every case alike
        for k in list(cases) if rep % 2 == 0 else list(cases)[::-1]:
            fn = cases[k]
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    r_nocache = best["measure_nocache"] / best["bare2"]
    r_cache2 = best["measure"] / best["bare2"]
    r_cache1 = best["measure"] / best["bare1"]
    tag = f"ResNet-32, N={n:,} CIFAR-shaped, batch {bs}, {torch.get_num_threads()} threads"
    rows = [
        {"case": f"two bare forward passes ({tag})", "value": best["bare2"], "unit": "s"},
        {"case": "one bare forward pass", "value": best["bare1"], "unit": "s"},
        {
            "case": "measure(cache_bytes=0): model runs twice",
            "value": best["measure_nocache"],
            "unit": "s",
        },  # fmt: skip
        {
            "case": "measure() default: first-pass features cached",
            "value": best["measure"],
            "unit": "s",
        },  # fmt: skip
        {
            "case": "measure(cache_bytes=0) / two bare passes",
            "value": r_nocache,
            "unit": "x",
            "goal": f"<= {GOAL}",
            "ok": r_nocache <= GOAL,
        },
        {
            "case": "measure() / two bare passes",
            "value": r_cache2,
            "unit": "x",
            "goal": f"<= {GOAL}",
            "ok": r_cache2 <= GOAL,
        },
        {"case": "measure() / one bare pass", "value": r_cache1, "unit": "x"},
    ]
    return {"name": "measure", "config": cfg, "rows": rows, "seconds": best}


if __name__ == "__main__":
    from _common import print_rows, save

    res = run(quick="--quick" in sys.argv)
    print_rows(res)
    print(f"wrote {save(res)}")
