"""Atomic file writes (temporary file in the same folder, fsync, rename), JSON-lines reading, and
one-line messages for operating-system errors.

A write that fails (read-only folder, full disk, a path under a file) leaves the previous file
intact and no temporary file behind, and raises an ``OSError`` that names the destination path;
the CLI turns it into one line with :func:`os_error_message`.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc  # name the destination
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays (recursively) into JSON-serialisable Python objects."""
    import numpy as np

    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None if obj != obj else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=indent) + "\n")


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """The JSON records of a ``.jsonl`` file; a broken line is an error naming the file and line."""
    from ncollapse.errors import NCollapseError

    p = Path(path)
    try:
        text = p.read_text()
    except UnicodeDecodeError as exc:
        raise NCollapseError(f"{p} is not a text file of JSON lines; restore it") from exc
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            raise NCollapseError(
                f"{p} line {i} is not valid JSON (corrupted or edited); restore the file or "
                f"delete that line"
            ) from exc
    return out


_OS_FIXES = {
    errno.EACCES: "make it writable (chmod u+w) or choose another output folder",
    errno.EPERM: "make it writable (chmod u+w) or choose another output folder",
    errno.EROFS: "the file system is read-only; choose another output folder",
    errno.ENOSPC: "the disk is full; free space or choose another output folder "
    "(files written before are intact)",
    errno.EDQUOT: "the disk quota is exhausted; free space or choose another output folder",
    errno.ENOTDIR: "a part of this path is a file, not a folder; choose another path",
    errno.EEXIST: "a file is in the way of a folder; choose another path",
    errno.EISDIR: "it is a folder; pass a file path",
    errno.ENOENT: "no such file or folder; check the path",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
}


def os_error_message(exc: OSError) -> str:
    """One line for an operating-system error: what failed, on which path, and the fix."""
    where = exc.filename if exc.filename is not None else "a file"
    what = exc.strerror or type(exc).__name__
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    fix = _OS_FIXES.get(exc.errno or -1, "check the path and its permissions")
    return f"cannot use {where}: {what}; {fix}"
