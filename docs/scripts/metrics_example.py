"""Generate the example .npz used in docs/metrics.md, and (optionally) the docs plot.

    python docs/scripts/metrics_example.py /tmp/lt_features.npz
    python docs/scripts/metrics_example.py /tmp/lt_features.npz --plot docs/img/metrics_seli.png

Features: K = 10 classes with a CIFAR-style exponential long-tailed profile (n_max = 500,
rho = 100), class means from the SELI closed form (``seli_factors``) embedded in d = 32 and
scaled by 10, plus isotropic Gaussian noise (std 0.28 per coordinate); classifier W = SELI
classifier + 5% noise, b = 0.
"""

from __future__ import annotations

import argparse

import numpy as np

from ncollapse.geometry import random_orthonormal, seli_factors, step_counts


def lt_counts(k: int = 10, n_max: int = 500, rho: float = 100.0) -> np.ndarray:
    return np.floor(n_max * rho ** (-np.arange(k) / (k - 1))).astype(int)


def make_example(seed: int = 0, d: int = 32, noise: float = 0.28):
    counts = lt_counts()
    K = counts.size
    y = np.repeat(np.arange(K), counts)
    f = seli_factors(y)
    Q = random_orthonormal(d, K - 1, seed=seed)
    mu = (f.M.T @ Q.T) * 10.0  # K x d class means of the SELI geometry
    W = f.W @ Q.T
    rng = np.random.default_rng(seed)
    H = mu[y] + noise * rng.standard_normal((y.size, d))  # isotropic within-class noise
    W = W + 0.05 * np.linalg.norm(W) / np.sqrt(W.size) * rng.standard_normal(W.shape)
    return {"H": H.astype(np.float32), "y": y, "W": W, "b": np.zeros(K)}


def plot(path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ncollapse.metrics import norms_vs_counts, statistics, target_distances

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    # (a) per-class norms against n_c for exact SELI features, long-tailed counts
    counts = lt_counts()
    y = np.repeat(np.arange(counts.size), counts)
    f = seli_factors(y)
    nv = norms_vs_counts(statistics(f.H.T, y, counts.size), f.W)
    a.loglog(counts, nv["w_norm"], "o-", label=r"$\|w_c\|$ (classifier)")
    a.loglog(counts, nv["mean_norm"], "s-", label=r"$\|\mu_c-\mu_G\|$ (class mean)")
    a.set_xlabel("training count $n_c$")
    a.set_title("SELI, CIFAR-style LT counts (rho=100)", fontsize=9)
    a.legend(fontsize=8)
    # (b) how far SELI is from the ETF: STEP k=10 (5 maj / 5 min), n_min = 1, ratio R
    Rs = np.unique(np.round(np.logspace(0, 3, 16)).astype(int))
    dW, dM, dWs = [], [], []
    for R in Rs:
        c = step_counts(5, 5, R, 1)
        yy = np.repeat(np.arange(10), c)
        ff = seli_factors(yy)
        td = target_distances(statistics(ff.H.T, yy, 10), ff.W)
        dW.append(td["dist_etf_W"])
        dM.append(td["dist_etf_M"])
        dWs.append(td["dist_seli_W"])
    b.semilogx(Rs, dW, "o-", label="dist_etf_W")
    b.semilogx(Rs, dM, "s-", label="dist_etf_M")
    b.semilogx(Rs, dWs, "k--", label="dist_seli_W (= 0)")
    b.set_xlabel("imbalance ratio R (STEP, k=10)")
    b.set_title("exact SELI features: distance to the ETF", fontsize=9)
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default="/tmp/lt_features.npz")
    ap.add_argument("--plot", default=None, help="also write the docs figure to this PNG")
    args = ap.parse_args()
    arrays = make_example()
    np.savez(args.out, **arrays)
    print(f"wrote {args.out}: H {arrays['H'].shape}, counts {np.bincount(arrays['y']).tolist()}")
    if args.plot:
        plot(args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
