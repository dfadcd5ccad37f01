"""Long-tailed subsets of any labelled dataset, with a manifest that rebuilds them exactly.

Conventions
-----------
* ``rho = n_max / n_min >= 1`` is the imbalance ratio. Papers' ``tau = n_min / n_max`` (e.g. 0.01,
  LDAM's ``imb_factor``) is accepted **only** through the explicitly named ``tau=`` argument.
* Exponential profile, LDAM-exact (Cao et al. 2019, arXiv:1906.07413, Sec. 4): class ``i``
  (0-based, class 0 is the head) keeps ``n_i = floor(n_max * tau ** (i / (K - 1)))`` with
  ``tau = 1 / rho``. The power is evaluated in exactly this form, as LDAM's
  ``get_img_num_per_cls`` does, so float rounding matches too.
* STEP profile: ``k_maj`` classes keep ``n_max``, the next ``k_min`` keep
  ``floor(n_max * (1 / R))`` with ``R = n_maj / n_min``.
* Selection (LDAM): ``np.random.seed(seed)`` once, then for each class in increasing label order
  ``idx = np.where(labels == c)[0]; np.random.shuffle(idx); keep idx[:n_c]``. The selected indices
  are concatenated class by class in that order. A private ``RandomState(seed)`` is used, which
  draws the same stream as the global seed without touching numpy's global state.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ncollapse.errors import NCollapseError, check_counts

PROFILES = ("exp", "step", "counts", "none")
MANIFEST_VERSION = 1


def _check_k(k: int, what: str = "k") -> int:
    if isinstance(k, bool) or int(k) != k:
        raise NCollapseError(f"{what}={k!r} must be an integer number of classes")
    k = int(k)
    if k < 2:
        raise NCollapseError(
            f"{what}={k}: a long-tailed profile needs at least 2 classes (K = 1 has no tail)"
        )
    return k


def _check_n_max(n_max: int) -> int:
    if isinstance(n_max, bool) or int(n_max) != n_max or int(n_max) < 1:
        raise NCollapseError(
            f"n_max={n_max!r} must be a positive integer (images in the head class)"
        )
    return int(n_max)


def resolve_rho(rho: float | None = None, tau: float | None = None) -> tuple[float, float]:
    """``(rho, tau)`` from exactly one of them; ``rho = n_max/n_min >= 1``, ``tau = 1/rho``."""
    if rho is not None and tau is not None:
        raise NCollapseError(f"pass either rho={rho} or tau={tau}, not both (rho = 1/tau)")
    if rho is None and tau is None:
        raise NCollapseError(
            "the profile needs an imbalance ratio: pass rho=n_max/n_min, e.g. rho=100"
        )
    if tau is not None:
        t = float(tau)
        if not math.isfinite(t) or not 0 < t <= 1:
            raise NCollapseError(
                f"tau={tau} must be in (0, 1] (tau = n_min/n_max, e.g. 0.01 for rho=100)"
            )
        return 1.0 / t, t
    r = float(rho)  # type: ignore[arg-type]
    if not math.isfinite(r) or r <= 0:
        raise NCollapseError(f"rho={rho} must be a finite number >= 1 (rho = n_max/n_min)")
    if r < 1:
        raise NCollapseError(
            f"rho={rho} < 1; rho is n_max/n_min >= 1. If you mean the papers' imbalance factor "
            f"{rho} = n_min/n_max, pass tau={rho} (equivalently rho={1 / r:g})"
        )
    return r, 1.0 / r


def exp_profile(
    n_max: int, k: int, rho: float | None = None, *, tau: float | None = None
) -> np.ndarray:
    """LDAM exponential profile ``n_i = floor(n_max * tau ** (i / (k - 1)))``, ``tau = 1/rho``.

    Raises NCollapseError if K < 2 or if the tail class would be empty (``n_max * tau < 1``).
    Example: ``exp_profile(5000, 10, 100)`` = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50].
    """
    n_max, k = _check_n_max(n_max), _check_k(k)
    rho_v, tau_v = resolve_rho(rho, tau)
    counts = np.array([int(n_max * tau_v ** (i / (k - 1.0))) for i in range(k)], dtype=np.int64)
    if counts.min() < 1:
        raise NCollapseError(
            f"rho={rho_v:g} with n_max={n_max} leaves class {int(np.argmin(counts))} empty "
            f"(n_max/rho = {n_max / rho_v:.3g} < 1); use rho <= {n_max} or a larger n_max"
        )
    return counts


def step_profile(n_max: int, k_maj: int, k_min: int, R: float) -> np.ndarray:
    """STEP profile: ``k_maj`` classes with ``n_max``, then ``k_min`` with ``floor(n_max * (1/R))``.

    ``R = n_maj / n_min >= 1`` (the same direction as rho).
    """
    n_max = _check_n_max(n_max)
    for name, v in (("k_maj", k_maj), ("k_min", k_min)):
        if v is None or isinstance(v, bool) or int(v) != v or int(v) < 1:
            raise NCollapseError(f"{name}={v!r} must be a positive integer number of classes")
    _check_k(int(k_maj) + int(k_min), "k_maj + k_min")
    if R is None:
        raise NCollapseError("the step profile needs R = n_maj/n_min (e.g. R=100)")
    r, tau = resolve_rho(R, None)
    n_min = int(n_max * tau)
    if n_min < 1:
        raise NCollapseError(
            f"R={r:g} with n_max={n_max} leaves the minority classes empty (n_max/R = "
            f"{n_max / r:.3g} < 1); use R <= {n_max} or a larger n_max"
        )
    return np.array([n_max] * int(k_maj) + [n_min] * int(k_min), dtype=np.int64)


def class_counts(labels, num_classes: int | None = None) -> np.ndarray:
    """``np.bincount`` of integer labels with validation (labels must be 0..K-1)."""
    y = _as_labels(labels)
    k = int(num_classes) if num_classes is not None else (int(y.max()) + 1 if y.size else 0)
    if y.size and y.max() >= k:
        raise NCollapseError(f"label {int(y.max())} >= num_classes={k}; labels must be 0..K-1")
    return np.bincount(y, minlength=k).astype(np.int64)


def _as_labels(labels) -> np.ndarray:
    if hasattr(labels, "detach"):  # a torch tensor (without importing torch here)
        labels = labels.detach().cpu().numpy()
    y = np.asarray(labels)
    if y.ndim != 1:
        raise NCollapseError(f"labels must be a 1-D vector, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.asarray(y, dtype=float) == np.round(np.asarray(y, dtype=float))):
            raise NCollapseError("labels must be integers 0..K-1")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise NCollapseError(f"label {int(y.min())} is negative; labels must be 0..K-1")
    return y


def sha256_indices(indices: np.ndarray) -> str:
    """SHA-256 of the indices as little-endian int64 bytes, in their stored order."""
    return hashlib.sha256(np.asarray(indices, dtype="<i8").tobytes()).hexdigest()


@dataclass
class LTManifest:
    """Everything needed to rebuild a long-tailed subset exactly, saved as JSON next to each run.

    ``indices_sha256`` hashes the selected indices (little-endian int64, class-grouped LDAM order);
    ``labels_sha256`` hashes the full source label vector, so a rebuild on different data is caught.
    """

    dataset: str
    num_classes: int
    profile: str
    seed: int
    counts: list[int]
    source_counts: list[int]
    n_total: int
    indices_sha256: str
    labels_sha256: str
    params: dict[str, Any] = field(default_factory=dict)
    indices: list[int] | None = None
    version: int = MANIFEST_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["indices"] is None:
            d.pop("indices")
        return d

    def save(self, path: str | os.PathLike) -> Path:
        """Write the manifest atomically as JSON (the index list only if ``indices`` is set)."""
        from ncollapse.io import atomic_write_json

        return atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "manifest") -> LTManifest:
        required = [
            "dataset",
            "num_classes",
            "profile",
            "seed",
            "counts",
            "source_counts",
            "n_total",
            "indices_sha256",
            "labels_sha256",
        ]
        if not isinstance(d, dict):
            raise NCollapseError(
                f"{source} is not a JSON object; is this an ncollapse LT manifest?"
            )
        missing = [k for k in required if k not in d]
        if missing:
            raise NCollapseError(f"{source} lacks {missing}; is this an ncollapse LT manifest?")
        if int(d.get("version", 1)) > MANIFEST_VERSION:
            raise NCollapseError(
                f"{source} has manifest version {d['version']} > {MANIFEST_VERSION}; "
                f"upgrade ncollapse"
            )
        if d["profile"] not in PROFILES:
            raise NCollapseError(f"{source}: unknown profile {d['profile']!r}; expected {PROFILES}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def load(cls, path: str | os.PathLike) -> LTManifest:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise NCollapseError(f"manifest {path} does not exist; check the run folder") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise NCollapseError(
                f"manifest {path} is not valid JSON ({exc}); it is corrupt"
            ) from exc
        return cls.from_dict(d, source=str(path))

    def rebuild(self, labels) -> LongTailedSubset:
        """Rebuild the subset from the full label vector; raises if anything differs."""
        y = _as_labels(labels)
        lh = sha256_indices(y)
        if lh != self.labels_sha256:
            raise NCollapseError(
                f"labels differ from those the manifest was built from (sha256 {lh[:12]}... vs "
                f"{self.labels_sha256[:12]}...); load the same dataset/split ({self.dataset!r})"
            )
        p = self.params
        if self.indices is not None:
            sel = np.asarray(self.indices, dtype=np.int64)
            if sel.size and (sel.min() < 0 or sel.max() >= y.shape[0]):
                raise NCollapseError(
                    "manifest indices fall outside the label vector; wrong dataset?"
                )
            got = np.bincount(y[sel], minlength=self.num_classes).tolist()
            if sha256_indices(sel) != self.indices_sha256 or got != list(self.counts):
                raise NCollapseError(
                    "the index list stored in the manifest does not match its own sha256/counts; "
                    "the manifest file was edited or is corrupt"
                )
            return LongTailedSubset(
                indices=sel, counts=np.asarray(self.counts, np.int64), manifest=self
            )
        sub = make_long_tailed(
            y,
            profile=self.profile,
            rho=p.get("rho") if p.get("tau") is None else None,
            tau=p.get("tau"),
            counts=self.counts if self.profile == "counts" else None,
            k_maj=p.get("k_maj"),
            k_min=p.get("k_min"),
            R=p.get("R"),
            n_max=p.get("n_max"),
            seed=self.seed,
            dataset=self.dataset,
            num_classes=self.num_classes,
        )
        if sub.manifest.indices_sha256 != self.indices_sha256 or list(sub.counts) != list(
            self.counts
        ):
            raise NCollapseError(
                f"rebuilt subset does not match the manifest (sha256 "
                f"{sub.manifest.indices_sha256[:12]}... vs {self.indices_sha256[:12]}...); "
                f"the builder or numpy's RandomState changed"
            )
        return sub


@dataclass
class LongTailedSubset:
    """Selected ``indices`` (int64, class-grouped LDAM order), ``counts`` and the manifest."""

    indices: np.ndarray
    counts: np.ndarray
    manifest: LTManifest

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def save_manifest(self, path: str | os.PathLike, include_indices: bool = False) -> Path:
        """Save the manifest; ``include_indices`` also stores the full index list (larger file)."""
        man = self.manifest
        if include_indices:
            man = LTManifest(**{**asdict(man), "indices": [int(i) for i in self.indices]})
        return man.save(path)


def make_long_tailed(
    labels,
    profile: str | None = "exp",
    rho: float | None = None,
    tau: float | None = None,
    counts=None,
    k_maj: int | None = None,
    k_min: int | None = None,
    R: float | None = None,
    seed: int = 0,
    *,
    n_max: int | None = None,
    num_classes: int | None = None,
    dataset: str = "custom",
) -> LongTailedSubset:
    """Build a long-tailed subset of a labelled dataset (LDAM convention, see module docstring).

    profile: ``"exp"`` (needs ``rho`` or ``tau``), ``"step"`` (``k_maj``, ``k_min``, ``R``; ``R``
    defaults to ``rho``), ``"counts"`` (explicit per-class ``counts``) or ``"none"`` (keep all).
    Passing ``counts`` with the default profile selects ``"counts"``.
    ``n_max`` defaults to the smallest class size in ``labels`` (the balanced per-class size for
    CIFAR/Fashion-MNIST), so that every class can supply its quota.
    """
    y = _as_labels(labels)
    src = class_counts(y, num_classes)
    k = _check_k(src.shape[0], "number of classes K")
    if src.min() == 0:
        raise NCollapseError(
            f"class {int(np.argmin(src))} has no samples in the labels; relabel to 0..K-1 "
            f"without gaps"
        )
    if seed is None or isinstance(seed, bool) or int(seed) != seed or int(seed) < 0:
        raise NCollapseError(f"seed={seed!r} must be a non-negative integer")
    seed = int(seed)
    if profile is None:
        profile = "counts" if counts is not None else ("step" if k_maj is not None else "exp")
    if not isinstance(profile, str) or profile.lower() not in PROFILES:
        raise NCollapseError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    profile = profile.lower()
    if counts is not None and profile == "exp" and rho is None and tau is None:
        profile = "counts"
    if n_max is None:
        n_max_v = int(src.min())
    else:
        n_max_v = _check_n_max(n_max)
    params: dict[str, Any] = {"n_max": n_max_v}

    if profile == "exp":
        if counts is not None:
            raise NCollapseError(
                "pass either counts=[...] or rho/tau for the exp profile, not both"
            )
        rho_v, tau_v = resolve_rho(rho, tau)
        want = exp_profile(n_max_v, k, tau=tau_v)
        params.update(rho=rho_v, tau=float(tau) if tau is not None else None)
    elif profile == "step":
        if R is None:
            R = rho
        if R is None and tau is not None:
            R = 1.0 / float(tau)
        if k_maj is None:
            raise NCollapseError(
                "the step profile needs explicit k_maj (majority classes), k_min and R; "
                f"e.g. k_maj={k // 2}, k_min={k - k // 2}, R=100"
            )
        if k_min is None:
            k_min = k - int(k_maj)
        if int(k_maj) + int(k_min) != k:
            raise NCollapseError(
                f"k_maj + k_min = {int(k_maj) + int(k_min)} but the labels have K={k} classes"
            )
        want = step_profile(n_max_v, int(k_maj), int(k_min), R)  # type: ignore[arg-type]
        params.update(k_maj=int(k_maj), k_min=int(k_min), R=float(R))  # type: ignore[arg-type]
    elif profile == "counts":
        if counts is None:
            raise NCollapseError("profile='counts' needs counts=[n_0, ..., n_{K-1}]")
        want = check_counts(counts, "counts")
        if want.shape[0] != k:
            raise NCollapseError(
                f"counts has {want.shape[0]} entries but the labels have K={k} classes"
            )
        params = {}
    else:  # none
        want = src.copy()
        params = {}

    short = np.flatnonzero(want > src)
    if short.size:
        c = int(short[0])
        raise NCollapseError(
            f"class {c} has only {int(src[c])} samples but the profile asks for {int(want[c])}; "
            f"lower n_max (now {n_max_v}) or the counts"
        )

    rs = np.random.RandomState(seed)
    parts = []
    for c in range(k):
        idx = np.where(y == c)[0]
        rs.shuffle(idx)
        parts.append(idx[: int(want[c])])
    sel = np.concatenate(parts).astype(np.int64)

    man = LTManifest(
        dataset=str(dataset),
        num_classes=k,
        profile=profile,
        seed=seed,
        counts=[int(v) for v in want],
        source_counts=[int(v) for v in src],
        n_total=int(sel.shape[0]),
        indices_sha256=sha256_indices(sel),
        labels_sha256=sha256_indices(y),
        params={kk: vv for kk, vv in params.items() if vv is not None},
    )
    return LongTailedSubset(indices=sel, counts=np.asarray(want, dtype=np.int64), manifest=man)
