"""The catalogue of reproductions: one entry per paper claim, with the recipe that checks it.

Every entry has an id (``seli-ufm``), the paper, the claim in one sentence, the data it needs,
whether it runs on this machine, the command that runs it, and a recipe: a function
``recipe(out_dir=None, *, quick=False, device=None, progress=None) -> summary`` that writes
``results.json`` / ``predictions.md`` / ``predictions.csv`` / tables / a figure into ``out_dir``
and returns the summary dict of :meth:`ncollapse.reproduce.report.Report.write`. The last verdict
is read back from the ``results.json`` a previous run left in the entry's default folder.

Entries register on the shared :class:`~ncollapse.registry.Registry` with
:func:`register_reproduction` when their module is imported; ``import ncollapse.reproduce``
imports them all, so the catalogue is complete on import.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ncollapse.registry import Registry

__all__ = [
    "REPRODUCTIONS",
    "Reproduction",
    "get_reproduction",
    "register_reproduction",
    "reproductions",
    "accepts_scale",
    "record_verdicts",
    "recorded_verdicts",
    "run_reproduction",
]

#: id -> recipe function, with the entry's fields as metadata
REPRODUCTIONS = Registry("reproduction", plural="reproductions")


@dataclass(frozen=True)
class Reproduction:
    """One catalogue entry (see the module docstring)."""

    id: str
    paper: str
    claim: str
    recipe: Callable[..., dict]
    data: str
    runnable_here: bool
    command: str
    out_dir: str

    def last_verdict(self, out_dir=None) -> str:
        """ "holds (116/116)", "does not hold (3 of 20 fail)" from the ``results.json`` in
        ``out_dir`` (default: the entry's output folder); without one, the verdict recorded in the
        package (:data:`RECORDED`, with its date and scale) when ``out_dir`` is not given; else
        "not run"."""
        v = verdict_of(Path(out_dir if out_dir is not None else self.out_dir))
        if v is not None or out_dir is not None:
            return v or "not run"
        rec = recorded_verdicts().get(self.id)
        if rec:
            return f"{rec['verdict']} [{rec['scale']}, recorded {rec['date']}]"
        return "not run"

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "paper": self.paper,
            "claim": self.claim,
            "recipe": f"{self.recipe.__module__}.{self.recipe.__name__}",
            "data": self.data,
            "runnable_here": self.runnable_here,
            "command": self.command,
            "last_verdict": self.last_verdict(),
        }


#: Verdicts of the runs behind ``docs/reproductions.md``, shipped with the package so that a fresh
#: install lists them; rewritten by :func:`record_verdicts`.
RECORDED = Path(__file__).with_name("recorded.json")


def verdict_of(out_dir: Path) -> str | None:
    """The verdict in ``out_dir/results.json`` (None when there is none)."""
    try:
        s = json.loads((Path(out_dir) / "results.json").read_text())["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    scale = " (quick)" if s.get("quick") else ""
    if s.get("all_ok"):
        return f"holds ({s['passed']}/{s['rows']}){scale}"
    return f"does not hold ({s['failed']} of {s['rows']} fail){scale}"


def recorded_verdicts() -> dict:
    """``{id: {"verdict", "scale", "date"}}`` from :data:`RECORDED` (empty when absent)."""
    try:
        return json.loads(RECORDED.read_text())
    except (OSError, ValueError):
        return {}


def record_verdicts(entries: dict[str, tuple[str | Path, str]], date: str) -> dict:
    """Record ``{id: (out_dir, scale)}``'s verdicts in :data:`RECORDED` (others are kept)."""
    from ncollapse.io import atomic_write_text

    rec = recorded_verdicts()
    for id, (out, scale) in entries.items():
        v = verdict_of(Path(out))
        if v is not None:
            rec[id] = {"verdict": v, "scale": scale, "date": date}
    atomic_write_text(RECORDED, json.dumps(rec, indent=2, sort_keys=True) + "\n")
    return rec


def register_reproduction(
    id: str,
    *,
    paper: str,
    claim: str,
    command: str,
    out_dir: str,
    data: str = "none (synthetic: the unconstrained-features model)",
    runnable_here: bool = True,
):
    """Decorator registering a recipe function as catalogue entry ``id``."""
    return REPRODUCTIONS.register(
        id,
        paper=paper,
        claim=claim,
        command=command,
        out_dir=out_dir,
        data=data,
        runnable_here=runnable_here,
    )


def get_reproduction(id: str) -> Reproduction:
    """The entry ``id``; an unknown id is a one-line error listing the valid ones."""
    recipe = REPRODUCTIONS.get(id)
    return Reproduction(id=id, recipe=recipe, **REPRODUCTIONS.meta(id))


def reproductions() -> list[Reproduction]:
    """Every registered entry, sorted by id."""
    return [get_reproduction(i) for i in REPRODUCTIONS.names()]


def accepts_scale(entry: Reproduction) -> bool:
    """Whether the entry's recipe takes ``scale=`` (smoke | here | paper): the trained-network
    entries do; the UFM entries have ``quick`` (their ``smoke``) and one full scale."""
    import inspect

    return "scale" in inspect.signature(entry.recipe).parameters


def run_reproduction(
    id: str,
    out_dir=None,
    *,
    quick: bool = False,
    device=None,
    progress=None,
    scale: str | None = None,
    **options,
) -> dict:
    """Run entry ``id``'s recipe (one torch thread: the problems are tiny) and return its summary."""
    import torch

    entry = get_reproduction(id)
    threads = torch.get_num_threads()
    # tiny problems: one thread avoids OpenMP spin contention on shared machines
    torch.set_num_threads(1)
    try:
        if accepts_scale(entry):
            return entry.recipe(
                out_dir, quick=quick, device=device, progress=progress, scale=scale, **options
            )
        if scale is not None:  # UFM recipes: smoke = their quick mode; here = paper = full
            quick = scale == "smoke"
        return entry.recipe(out_dir, quick=quick, device=device, progress=progress)
    finally:
        torch.set_num_threads(threads)
