"""Shared helpers for benchmarks: timing, machine description, result files.

Each benchmark module exposes ``run(quick: bool = False) -> dict`` returning
``{"name": ..., "rows": [{"case": ..., "value": ..., "unit": ..., "goal": ..., "ok": bool}], ...}``
and writes ``benchmarks/results/<name>.json`` through :func:`save`.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def best_of(fn, repeat: int = 3, warmup: int = 1) -> float:
    """Smallest wall time over ``repeat`` calls after ``warmup`` calls (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def save(result: dict) -> Path:
    from ncollapse.io import atomic_write_json

    result = dict(result)
    result.setdefault("machine", machine())
    result.setdefault("when", time.strftime("%Y-%m-%dT%H:%M:%S"))
    return atomic_write_json(RESULTS / f"{result['name']}.json", result)


def print_rows(result: dict) -> None:
    from ncollapse.output import print_table

    print_table(
        f"benchmark: {result['name']}",
        ["case", "value", "unit", "goal", "ok"],
        [
            [r["case"], r["value"], r.get("unit", ""), r.get("goal", ""), r.get("ok", "")]
            for r in result["rows"]
        ],
    )
