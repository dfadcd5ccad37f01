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
"""

from ncollapse.errors import NCollapseError

__version__ = "0.1.0"
__all__ = ["NCollapseError", "__version__"]
