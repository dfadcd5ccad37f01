"""Where dataset files are looked for, and the errors that say where we looked.

Nothing here downloads. A dataset is looked for, in order, in
1. the explicit ``root`` (``--data-root`` / ``data.root``), itself and ``root/<name>``, plus the
   format's usual sub-folders (e.g. ``cifar-10-batches-py``). An explicit root that does not exist
   is an error naming it -- it is never silently replaced by another folder;
2. the system location (Fashion-MNIST only: ``/usr/share/datasets/fashion-mnist``, from the Debian
   package ``dataset-fashion-mnist``);
3. ``$NCOLLAPSE_DATA/<name>`` and ``./data/<name>``.
A missing dataset raises :class:`~ncollapse.errors.DataNotFoundError` naming every path searched
and how to obtain the files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ncollapse.errors import DataNotFoundError

NEVER_DOWNLOADS = "ncollapse never downloads"


def default_bases(name: str) -> list[Path]:
    """``$NCOLLAPSE_DATA/<name>`` (when set) and ``./data/<name>``."""
    bases = []
    env = os.environ.get("NCOLLAPSE_DATA")
    if env:
        bases.append(Path(env) / name)
    bases.append(Path.cwd() / "data" / name)
    return bases


def gz_or_raw(folder: Path, stem: str) -> Path | None:
    """``folder/stem.gz`` or ``folder/stem``, whichever exists (gzip preferred)."""
    for cand in (folder / f"{stem}.gz", folder / stem):
        if cand.is_file():
            return cand
    return None


def candidate_folders(
    name: str,
    root=None,
    subdirs: Sequence[str] = (),
    system_dirs: Sequence[Path] = (),
    defaults: bool = True,
) -> list[Path]:
    """Folders to search, in order (see the module docstring)."""
    bases: list[Path] = []
    if root is not None:
        r = Path(root)
        bases += [r, r / name]
    bases += list(system_dirs)
    if defaults:
        bases += default_bases(name)
    out: list[Path] = []
    for b in bases:
        for d in (b, *(b / s for s in subdirs)):
            if d not in out:
                out.append(d)
    return out


@dataclass
class Found:
    """Result of a search: the folder (None if not found) and every place looked at."""

    path: Path | None
    searched: list[str]


def search(folders: Iterable[Path], files: Sequence[str]) -> Found:
    """The first folder holding every file of ``files`` (raw or ``.gz``)."""
    searched = []
    for d in folders:
        searched.append(str(d))
        if d.is_dir() and all(gz_or_raw(d, f) is not None for f in files):
            return Found(d, searched)
    return Found(None, searched)


def check_root(root, name: str | None = None, how_to_get: str = "", defaults=()) -> None:
    """Raise :class:`DataNotFoundError` when an explicit ``root`` does not exist.

    The message names the root, the default places that were *not* searched instead (an explicit
    root is never silently replaced) and, for a dataset, how to get it.
    """
    if root is None or Path(root).exists():
        return
    what = f"{name}: " if name else ""
    msg = f"{what}data root {root} does not exist; fix the path (--data-root / data.root)"
    if defaults:
        msg += " or drop it to search the default places (" + "; ".join(map(str, defaults)) + ")"
    if how_to_get:
        msg += f"; how to get it: {how_to_get}"
    raise DataNotFoundError(f"{msg}; {NEVER_DOWNLOADS}")


def not_found_error(
    name: str, split: str, searched: Sequence[str], files: Sequence[str], how_to_get: str
) -> DataNotFoundError:
    """The one-line error for a dataset that is nowhere to be found."""
    return DataNotFoundError(
        f"{name} ({split}) not found; searched: {'; '.join(searched)}"
        + (f"; expected files: {', '.join(files)} (raw or .gz)" if files else "")
        + f"; how to get it: {how_to_get}; {NEVER_DOWNLOADS}"
    )
