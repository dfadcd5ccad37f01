"""What ``measure`` accepts as data, turned into batches ``(inputs, labels)`` (one decision here).

Accepted: a ``torch.utils.data.DataLoader`` or any iterable of ``(x, y[, ...])`` tuples or of dicts
(keys ``image``/``input``/``x``/``pixel_values`` and ``label``/``target``/``y``); a map-style
``Dataset`` (wrapped in a DataLoader, no shuffling); tensors or arrays ``(X, y)`` (as a pair, or
``data=X, labels=y``), cut into batches of ``batch_size``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ncollapse.errors import NCollapseError

__all__ = ["Batches", "as_batches", "split_batch", "to_device"]

INPUT_KEYS = ("image", "images", "input", "inputs", "x", "pixel_values")
LABEL_KEYS = ("label", "labels", "target", "targets", "y")


def _is_array(a) -> bool:
    import numpy as np
    import torch

    return isinstance(a, (torch.Tensor, np.ndarray))


@dataclass
class Batches:
    """A re-iterable source of batches (``reiterable`` False for one-shot iterators)."""

    source: Any
    reiterable: bool
    length: int | None
    name: str

    def __iter__(self):
        return iter(self.source)


class _TensorBatches:
    def __init__(self, X, y, batch_size: int):
        import numpy as np
        import torch

        self.X = torch.from_numpy(np.ascontiguousarray(X)) if isinstance(X, np.ndarray) else X
        self.y = torch.from_numpy(np.asarray(y)) if isinstance(y, np.ndarray) else y
        self.bs = batch_size

    def __len__(self):
        return -(-len(self.y) // self.bs)

    def __iter__(self):
        for s in range(0, len(self.y), self.bs):
            yield self.X[s : s + self.bs], self.y[s : s + self.bs]


def as_batches(data, labels=None, *, batch_size: int = 256, name: str = "data") -> Batches:
    """Normalise ``data`` (see the module docstring) into :class:`Batches`."""
    import torch
    from torch.utils.data import DataLoader, Dataset, IterableDataset

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise NCollapseError(f"batch_size={batch_size!r} must be a positive integer")
    if labels is not None or (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and _is_array(data[0])
        and _is_array(data[1])
        and getattr(data[1], "ndim", 0) == 1
        and getattr(data[0], "ndim", 0) >= 1
        and len(data[0]) == len(data[1])
    ):
        X, y = (data, labels) if labels is not None else data
        if not (_is_array(X) and _is_array(y)):
            raise NCollapseError(
                f"{name}: with labels= the data must be a tensor or array of inputs; got "
                f"{type(X).__name__}"
            )
        if len(X) != len(y):
            raise NCollapseError(
                f"{name}: {len(X)} inputs but {len(y)} labels; pass one label per input"
            )
        tb = _TensorBatches(X, y, batch_size)
        return Batches(tb, True, len(tb), name)
    if isinstance(data, DataLoader):
        return Batches(data, True, _len(data), name)
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        loader = DataLoader(data, batch_size=batch_size, shuffle=False)
        return Batches(loader, True, _len(loader), name)
    if isinstance(data, torch.Tensor) or _is_array(data):
        raise NCollapseError(
            f"{name} is a single array; pass inputs and labels: measure(model, (X, y)) or labels=y"
        )
    if not isinstance(data, Iterable):
        raise NCollapseError(
            f"{name} is a {type(data).__name__}; pass a DataLoader, an iterable of (x, y) batches, "
            f"a map-style Dataset or tensors (X, y)"
        )
    one_shot = iter(data) is data
    return Batches(data, not one_shot, _len(data), name)


def _len(obj) -> int | None:
    try:
        return len(obj)
    except TypeError:
        return None


def split_batch(batch, name: str = "data"):
    """``(inputs, labels)`` of one batch (tuple/list ``(x, y, ...)`` or a dict)."""
    if isinstance(batch, Mapping):
        x = next((batch[k] for k in INPUT_KEYS if k in batch), None)
        y = next((batch[k] for k in LABEL_KEYS if k in batch), None)
        if x is None or y is None:
            raise NCollapseError(
                f"{name}: a dict batch needs an input key ({'/'.join(INPUT_KEYS)}) and a label key "
                f"({'/'.join(LABEL_KEYS)}); it has {', '.join(map(str, batch)) or 'no keys'}"
            )
        return x, y
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise NCollapseError(
        f"{name}: each batch must be an (inputs, labels) pair, got {type(batch).__name__}; "
        f"measure needs labels to group features by class"
    )


def to_device(x, device):
    """Move tensors (also inside tuples, lists and dicts) to ``device``."""
    import numpy as np
    import torch

    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, Mapping):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(to_device(v, device) for v in x)
    return x
