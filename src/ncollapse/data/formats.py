"""Low-level readers for the standard on-disk formats of image datasets.

Every reader checks what it reads and raises :class:`DataFormatError` (an ``NCollapseError``)
naming the file, what is wrong with it and how to fix it; nothing here downloads anything.

Formats
-------
* IDX (MNIST, Fashion-MNIST, EMNIST), raw or gzip-compressed (detected by the gzip magic bytes,
  not by the file name). Header: two zero bytes, a type code (0x08 = uint8, 0x09 = int8,
  0x0B = int16, 0x0C = int32, 0x0D = float32, 0x0E = float64), the number of dimensions ``d``,
  then ``d`` big-endian uint32 sizes, then the data in C order, big-endian.
* CIFAR-10/100 python pickles, read through :class:`RestrictedUnpickler`, which resolves only the
  handful of numpy globals needed to rebuild a plain ``ndarray``; any other global (``os.system``,
  ``builtins.eval``, ...) is refused *before* it can be called.
* SVHN cropped-digit ``.mat`` (MATLAB v5, via ``scipy.io.loadmat``).
* STL-10 binary: uint8 images stored column-major (3 x 96 x 96 per image), labels 1-based.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import pickle
import zlib
from pathlib import Path

import numpy as np

from ncollapse.errors import NCollapseError


class DataFormatError(NCollapseError):
    """A dataset file exists but is corrupt, truncated or not in the expected format."""


# ----------------------------------------------------------------------------------------------
# IDX
# ----------------------------------------------------------------------------------------------

_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {np.dtype(v).newbyteorder(">").str: k for k, v in _IDX_TYPES.items()}
_IDX_CODES["|u1"] = 0x08
_IDX_CODES["|i1"] = 0x09


def _fix_hint(path: Path) -> str:
    return f"delete {path} and copy or extract it again from the original archive"


def read_bytes_maybe_gzip(path: str | os.PathLike) -> bytes:
    """Return the content of ``path``, gunzipping it when it starts with the gzip magic bytes."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(
            f"cannot read {path}: {exc.strerror}; check the file permissions"
        ) from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(
                f"{path} is a corrupt or truncated gzip file ({exc}); {_fix_hint(path)}"
            ) from exc
    return raw


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file into a numpy array (native byte order)."""
    if len(data) < 4:
        raise DataFormatError(f"{source} is too short ({len(data)} bytes) to be an IDX file")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataFormatError(
            f"{source} is not an IDX file (magic bytes {data[:4].hex()}; expected 0000 then a "
            f"type code in {sorted(hex(k) for k in _IDX_TYPES)}); check that the path points at "
            f"an *-idx?-ubyte file"
        )
    dtype = _IDX_TYPES[data[2]]
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataFormatError(f"{source}: IDX header declares {ndim} dimension(s) but is truncated")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise DataFormatError(
            f"{source} is {what}: header shape {shape} needs {expected} bytes, file has "
            f"{len(data)}; the file is corrupt, re-extract it"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip)."""
    path = Path(path)
    return parse_idx(read_bytes_maybe_gzip(path), source=str(path))


def idx_bytes(arr: np.ndarray) -> bytes:
    """Serialise ``arr`` as IDX (the inverse of :func:`parse_idx`)."""
    arr = np.asarray(arr)
    key = arr.dtype.newbyteorder(">").str if arr.dtype.itemsize > 1 else arr.dtype.str
    if key not in _IDX_CODES:
        raise NCollapseError(f"dtype {arr.dtype} cannot be stored in IDX; use uint8/int32/float32")
    code = _IDX_CODES[key]
    be = arr.astype(_IDX_TYPES[code], copy=False)
    head = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    return head + np.ascontiguousarray(be).tobytes()


def write_idx(path: str | os.PathLike, arr: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``arr`` as an IDX file; gzip it when ``compress`` (default: name ends in ``.gz``)."""
    from ncollapse.io import atomic_write_bytes

    path = Path(path)
    data = idx_bytes(arr)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    return atomic_write_bytes(path, data)


# ----------------------------------------------------------------------------------------------
# Restricted unpickling (CIFAR python pickles)
# ----------------------------------------------------------------------------------------------


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global (callable) outside the allow-list."""


def _latin1_encode(obj, encoding="latin1", errors="strict"):
    """``_codecs.encode`` as pickled by protocol 2 for ``bytes``; only latin-1 is accepted."""
    if codecs.lookup(encoding).name != "iso8859-1" or not isinstance(obj, str):
        raise UnsafePickleError(f"refused _codecs.encode with encoding {encoding!r}")
    return obj.encode("latin1", errors)


def _checked_dtype(*args, **kwargs):
    dt = np.dtype(*args, **kwargs)
    if dt.hasobject:
        raise UnsafePickleError(f"refused numpy dtype {dt} (object dtypes are not allowed)")
    return dt


def _allowed_globals() -> dict[tuple[str, str], object]:
    reconstruct = np.zeros(1).__reduce__()[0]  # numpy's own multiarray._reconstruct
    try:  # numpy 2 pickles protocol-5 arrays through _core.numeric._frombuffer
        from numpy._core.numeric import _frombuffer as frombuffer  # type: ignore
    except ImportError:  # pragma: no cover - numpy 1
        from numpy.core.numeric import _frombuffer as frombuffer  # type: ignore
    allowed: dict[tuple[str, str], object] = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = reconstruct
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = _checked_dtype
    allowed[("_codecs", "encode")] = _latin1_encode
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild only dicts, lists, str/bytes, numbers and plain numpy arrays.

    ``find_class`` is the only way a pickle can reach a callable, so refusing every global outside a
    short allow-list (numpy's array reconstructors, ``numpy.dtype`` without object dtypes, and
    latin-1 ``_codecs.encode`` used by protocol 2 for bytes) means a hostile pickle cannot run code.
    """

    _ALLOWED: dict[tuple[str, str], object] | None = None

    def find_class(self, module: str, name: str):  # noqa: D401
        if RestrictedUnpickler._ALLOWED is None:
            RestrictedUnpickler._ALLOWED = _allowed_globals()
        try:
            return RestrictedUnpickler._ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused to load global {module}.{name}: only plain numpy arrays, lists, bytes "
                f"and numbers are allowed in dataset pickles"
            ) from None

    def persistent_load(self, pid):  # pragma: no cover - defensive
        raise UnsafePickleError("persistent ids are not allowed in dataset pickles")


def restricted_load(data: bytes, source: str = "<bytes>", encoding: str = "bytes"):
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; any failure becomes DataFormatError."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
    except UnsafePickleError as exc:
        raise DataFormatError(
            f"{source}: rejected unsafe pickle ({exc}); only use CIFAR pickles from the official "
            f"archive"
        ) from exc
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
    ) as exc:
        raise DataFormatError(
            f"{source} is a corrupt or truncated pickle ({type(exc).__name__}: {exc}); "
            f"{_fix_hint(Path(source))}"
        ) from exc


def _key(d: dict, name: str):
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise KeyError(name)


def read_cifar_pickle(
    path: str | os.PathLike, label_key: str = "labels", allowed_keys: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR batch pickle -> (images uint8 N x 3 x 32 x 32, labels int64 N).

    The pickle must be a dict whose keys are among the expected CIFAR keys (``data``, ``labels``
    or ``fine_labels``/``coarse_labels``, ``batch_label``, ``filenames``); ``data`` must be a uint8
    array of shape N x 3072 (the row layout is R(1024) G(1024) B(1024), each row-major 32 x 32).
    """
    path = Path(path)
    obj = restricted_load(read_bytes_maybe_gzip(path), source=str(path))
    expected = {"data", "batch_label", "filenames", label_key, *allowed_keys}
    if not isinstance(obj, dict):
        raise DataFormatError(
            f"{path}: expected a dict in the CIFAR pickle, got {type(obj).__name__}"
        )
    keys = {k.decode("latin1") if isinstance(k, bytes) else k for k in obj}
    extra = sorted(str(k) for k in keys - expected)
    if extra:
        raise DataFormatError(
            f"{path}: unexpected keys {extra} in CIFAR pickle (expected {sorted(expected)})"
        )
    try:
        data = _key(obj, "data")
        labels = _key(obj, label_key)
    except KeyError as exc:
        raise DataFormatError(
            f"{path}: CIFAR pickle has no {exc.args[0]!r} entry; is this the right archive "
            f"(cifar-10-batches-py uses 'labels', cifar-100-python uses 'fine_labels')?"
        ) from None
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3072
    ):
        desc = f"{type(data).__name__} {getattr(data, 'dtype', '')} {getattr(data, 'shape', '')}"
        raise DataFormatError(f"{path}: 'data' must be a uint8 array N x 3072, got {desc}")
    try:
        lab = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise DataFormatError(f"{path}: labels are not integers") from exc
    if lab.ndim != 1 or lab.shape[0] != data.shape[0]:
        raise DataFormatError(f"{path}: {lab.shape} labels for {data.shape[0]} images")
    return data.reshape(-1, 3, 32, 32).copy(), lab


def read_pickle_meta(path: str | os.PathLike, key: str) -> list[str] | None:
    """Class names from a CIFAR ``batches.meta`` / ``meta`` file, or None if absent/unreadable."""
    path = Path(path)
    if not path.is_file():
        return None
    obj = restricted_load(read_bytes_maybe_gzip(path), source=str(path))
    try:
        names = _key(obj, key)
    except (KeyError, TypeError):
        return None
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


# ----------------------------------------------------------------------------------------------
# SVHN .mat and STL-10 binary
# ----------------------------------------------------------------------------------------------


def read_svhn_mat(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read SVHN ``*_32x32.mat``: X is 32 x 32 x 3 x N uint8, y is N x 1 with label 10 for digit 0.

    Returns images N x 3 x 32 x 32 (``X.transpose(3, 2, 0, 1)``) and labels with 10 mapped to 0.
    """
    import scipy.io

    path = Path(path)
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # scipy raises many types (IndexError, MatReadError, ...) on bad files
        raise DataFormatError(
            f"{path} is not a readable MATLAB v5 .mat file ({exc}); {_fix_hint(path)}"
        ) from exc
    if "X" not in mat or "y" not in mat:
        raise DataFormatError(
            f"{path}: expected variables 'X' and 'y', found "
            f"{sorted(k for k in mat if not k.startswith('__'))}"
        )
    x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataFormatError(f"{path}: X must have shape 32 x 32 x 3 x N, got {x.shape}")
    if x.shape[3] != y.shape[0]:
        raise DataFormatError(f"{path}: {x.shape[3]} images but {y.shape[0]} labels")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() > 10):
        raise DataFormatError(
            f"{path}: labels must be 1..10 (10 = digit 0), got {y.min()}..{y.max()}"
        )
    y[y == 10] = 0
    return np.ascontiguousarray(x.astype(np.uint8).transpose(3, 2, 0, 1)), y


def read_stl10_bin(
    x_path: str | os.PathLike, y_path: str | os.PathLike | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read STL-10 binary files: images N x 3 x 96 x 96 uint8 (column-major on disk), labels 1..10.

    On disk each image is 27,648 bytes: channel by channel, each 96 x 96 plane column-major, so the
    C-order reshape (N, 3, 96, 96) yields [n, c, w, h] and is transposed to [n, c, h, w].
    Labels are returned 0-based (file value - 1).
    """
    x_path = Path(x_path)
    raw = read_bytes_maybe_gzip(x_path)
    per = 3 * 96 * 96
    if len(raw) == 0 or len(raw) % per:
        raise DataFormatError(
            f"{x_path} has {len(raw)} bytes, not a positive multiple of {per} (one 3x96x96 image); "
            f"the file is truncated, re-extract stl10_binary.tar.gz"
        )
    x = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
    x = np.ascontiguousarray(x)
    if y_path is None:
        return x, None
    y_path = Path(y_path)
    y = np.frombuffer(read_bytes_maybe_gzip(y_path), dtype=np.uint8).astype(np.int64)
    if y.shape[0] != x.shape[0]:
        raise DataFormatError(f"{y_path}: {y.shape[0]} labels for {x.shape[0]} images in {x_path}")
    if y.size and (y.min() < 1 or y.max() > 10):
        raise DataFormatError(f"{y_path}: STL-10 labels must be 1..10, got {y.min()}..{y.max()}")
    return x, y - 1
