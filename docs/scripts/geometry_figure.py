"""Figure for docs/geometry.md: SELI norm ratios and cosines vs the STEP ratio R (closed form).

Run:  .venv/bin/python docs/scripts/geometry_figure.py  [--out docs/img/geometry_seli_vs_R.png]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ncollapse.geometry import step_seli_closed_form
    from ncollapse.io import atomic_write_bytes

    p = argparse.ArgumentParser(description=__doc__)
    root = Path(__file__).resolve().parents[2]
    p.add_argument("--out", default=str(root / "docs/img/geometry_seli_vs_R.png"))
    args = p.parse_args(argv)

    Rs = np.unique(np.round(np.logspace(0, 3, 61)).astype(int))
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.6), dpi=100)
    for k, ls in ((4, "--"), (10, "-")):
        h = k // 2
        rows = [step_seli_closed_form(h, h, R) for R in Rs]
        get = lambda key, rows=rows: np.array([r[key] for r in rows])
        axes[0].plot(Rs, get("w_norm_ratio"), ls, color="C0", label=f"‖w_maj‖/‖w_min‖, k={k}")
        axes[0].plot(Rs, get("mu_norm_ratio"), ls, color="C1", label=f"‖μ_maj‖/‖μ_min‖, k={k}")
        axes[1].plot(Rs, get("cos_w_min_min"), ls, color="C2", label=f"cos(w_min, w_min'), k={k}")
        axes[1].plot(Rs, get("cos_mu_min_min"), ls, color="C3", label=f"cos(μ_min, μ_min'), k={k}")
        axes[1].plot(Rs, get("cos_w_maj_maj"), ls, color="C4", label=f"cos(w_maj, w_maj'), k={k}")
    axes[0].axhline(1, color="gray", lw=0.5)
    axes[1].axhline(0, color="gray", lw=0.5)
    axes[1].axvline(7, color="gray", lw=0.8, ls=":")
    axes[1].annotate("R = 7", (7, 0.55), fontsize=8, ha="center")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("R = n_maj / n_min  (k_maj = k_min = k/2, n_min = 1)")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3, which="both", lw=0.3)
    axes[0].set_title("SELI norm ratios (unsquared)", fontsize=10)
    axes[1].set_title("SELI cosines: minority classifiers turn acute at R > 7", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    out = atomic_write_bytes(args.out, buf.getvalue())
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    return out


if __name__ == "__main__":
    main()
