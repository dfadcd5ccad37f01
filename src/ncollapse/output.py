"""Output helpers shared by CLI commands: JSON for scripts, rich tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from ncollapse.io import to_jsonable


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2) + "\n")


def fmt(x: Any, digits: int = 4) -> str:
    """Format a number compactly for tables."""
    import numpy as np

    if isinstance(x, (bool, np.bool_, str)) or x is None:
        return str(x)
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}f}"


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(str(c))
    for r in rows:
        table.add_row(*[fmt(v) for v in r])
    Console().print(table)


def print_matrix(title: str, m, row_labels: Sequence[str] | None = None) -> None:
    import numpy as np

    m = np.asarray(m)
    k = m.shape[1]
    cols = [""] + [str(j) for j in range(k)]
    labels = row_labels or [str(i) for i in range(m.shape[0])]
    print_table(title, cols, ([labels[i], *m[i].tolist()] for i in range(m.shape[0])))
