"""ncollapse: neural collapse under class imbalance.

Subpackages
-----------
geometry  closed-form targets: simplex ETF, SEL/SELI, Liu's deep-linear UFM, NCMC multi-center frames
metrics   streaming NC statistics and imbalance-aware measures (NC1-NC4, SELI distances, minority collapse)
ufm       unconstrained-features-model solvers and reproduction recipes
data      long-tailed builders, offline readers, device-resident loader
models    backbones and heads
losses    long-tail and NC-inducing losses (registry by name)
train     trainer with NC tracking, resume and DDP
measuring ncollapse.measure(model, data): NC of any trained network, with the theory next to it
"""

from ncollapse.errors import NCollapseError

__version__ = "0.1.0"
__all__ = ["NCollapseError", "__version__", "measure"]


def __getattr__(name: str):
    # ``ncollapse.measure(model, data)`` without importing torch at ``import ncollapse``
    if name in ("measure", "MeasureResult"):
        import ncollapse.measuring as _m

        return getattr(_m, name)
    raise AttributeError(f"module 'ncollapse' has no attribute {name!r}")
