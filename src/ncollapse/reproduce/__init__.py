"""Reproductions of the papers' claims, each a recipe with a measured verdict.

A recipe solves the models the paper analyses, compares the numerics with the paper's prediction
row by row (``prediction | numerics | error | tol | ok``) and writes the table, data and a figure
(:mod:`ncollapse.reproduce.report`). The catalogue (:mod:`ncollapse.reproduce.catalogue`) lists
them by id; importing this package registers every entry:

==========  =========================================================  ==========================
id          claim checked                                              module
==========  =========================================================  ==========================
seli-ufm    CE-UFM with ridge -> SELI (Thrampoulidis et al. 2022)      :mod:`.seli_ufm`
liu-ufm     deep-linear MSE UFM minimizer (Liu, arXiv 2411.17278)      :mod:`.liu_ufm`
ncmc-ufm    Loss P with a fixed frame, Cor. 3.7 (Yan et al. 2024)      :mod:`.ncmc_ufm`
==========  =========================================================  ==========================

``ncollapse ufm reproduce seli|liu|ncmc`` runs the three UFM entries (:data:`UFM_COMMANDS`).
"""

from ncollapse.reproduce import (  # noqa: F401  (registers entries)
    comparison,
    deepnet,
    diagnostics,
    liu_ufm,
    ncmc_ufm,
    seli_ufm,
    tables,
)
from ncollapse.reproduce.catalogue import (
    REPRODUCTIONS,
    Reproduction,
    accepts_scale,
    get_reproduction,
    register_reproduction,
    reproductions,
    run_reproduction,
)

#: ``ncollapse ufm reproduce NAME`` -> catalogue id
UFM_COMMANDS = {"seli": "seli-ufm", "liu": "liu-ufm", "ncmc": "ncmc-ufm"}

__all__ = [
    "REPRODUCTIONS",
    "accepts_scale",
    "UFM_COMMANDS",
    "Reproduction",
    "get_reproduction",
    "register_reproduction",
    "reproductions",
    "run_reproduction",
]
