"""SVHN cropped digits (MATLAB v5 ``<split>_32x32.mat``; label 10 means digit 0).

Option ``extra`` (default False): the ``train`` split also holds the 531,131 images of
``extra_32x32.mat``, appended after those of ``train_32x32.mat`` (the training set of the SETF /
NCMC code, which draws its long-tailed subset from train and extra). The ``test`` and ``extra``
splits ignore it. Nothing is downloaded: a missing file is a :class:`DataNotFoundError` naming it
and the folder looked in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ncollapse.data.base import ArrayDataset
from ncollapse.data.formats import read_svhn_mat
from ncollapse.data.readers._common import DIGIT_CLASSES
from ncollapse.data.search import NEVER_DOWNLOADS
from ncollapse.errors import DataNotFoundError, NCollapseError

#: The reader's keyword options (besides ``lazy``).
SVHN_OPTIONS = ("extra",)


def _with_extra(split: str, opts: dict) -> bool:
    extra = opts.get("extra", False)
    if not isinstance(extra, bool):
        raise NCollapseError(
            f"svhn option extra={extra!r} is not true or false; set data.options.extra: true to "
            "append extra_32x32.mat to the train split, or false (the default)"
        )
    return split == "train" and extra


def svhn_required(split: str, opts: dict) -> list[str]:
    files = [f"{split}_32x32.mat"]
    if _with_extra(split, opts):
        files.append("extra_32x32.mat")
    return files


def _mat(folder: Path, name: str, why: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise DataNotFoundError(
            f"svhn: {name} not found in {folder} ({why}); copy it from "
            f"ufldl.stanford.edu/housenumbers into that folder or drop data.options.extra; "
            f"{NEVER_DOWNLOADS}"
        )
    return path


def read_svhn(folder: Path, split: str, extra: bool = False, **opts) -> ArrayDataset:
    folder = Path(folder)
    x, y = read_svhn_mat(_mat(folder, f"{split}_32x32.mat", f"the {split} split"))
    info: dict = {}
    if _with_extra(split, {"extra": extra}):
        xe, ye = read_svhn_mat(_mat(folder, "extra_32x32.mat", "svhn option extra=True"))
        info = {"extra": True, "n_train": int(len(y)), "n_extra": int(len(ye))}
        x, y = np.concatenate([x, xe]), np.concatenate([y, ye])
        del xe, ye
    return ArrayDataset(x, y, 10, "svhn", DIGIT_CLASSES, split=split, source=str(folder), info=info)
