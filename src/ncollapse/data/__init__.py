"""ncollapse.data: datasets, long-tailed builders, offline readers and loaders.

Layout (data flow: files -> dataset -> long-tailed subset -> loader):

* :mod:`~ncollapse.data.base` -- the :class:`LabelledDataset` protocol, :class:`ArrayDataset`
  (in memory), :class:`MapDataset` / :func:`as_dataset` (any map-style torch dataset);
  :mod:`~ncollapse.data.lazy` -- :class:`LazyImageDataset` (decoded on access).
* :mod:`~ncollapse.data.search` -- where files are looked for, and the errors that say so;
  :mod:`~ncollapse.data.formats` -- byte-level parsers (IDX, restricted pickles, .mat, STL-10);
  :mod:`~ncollapse.data.readers` -- one reader module per format;
  :mod:`~ncollapse.data.registry` -- :func:`load_dataset` / :func:`list_datasets` /
  :func:`dataset_info`, names, aliases and capabilities on the shared registry. Nothing is ever
  downloaded.
* :mod:`~ncollapse.data.longtail` -- :func:`exp_profile`, :func:`step_profile`,
  :func:`make_long_tailed`, :class:`LTManifest`: LDAM-exact long-tailed subsets with a manifest
  that rebuilds them; :mod:`~ncollapse.data.samplers` -- :func:`make_sampler`.
* :mod:`~ncollapse.data.loader` -- :class:`DeviceLoader` (device-resident, batched augmentation),
  :class:`Augment`, :func:`mixup`; :mod:`~ncollapse.data.maploader` -- :class:`MapLoader` (torch
  ``DataLoader`` workers, same per-epoch plan); :mod:`~ncollapse.data.pipeline` -- the trainer's
  data path (:func:`load_train_test`, :func:`make_train_loaders`).

Convention: ``rho = n_max / n_min >= 1``; ``tau = 1 / rho`` only through ``tau=``.
"""

from ncollapse.data.base import (
    ArrayDataset,
    LabelledDataset,
    MapDataset,
    as_dataset,
    channel_stats,
    is_resident,
)
from ncollapse.data.formats import DataFormatError, RestrictedUnpickler, read_idx, write_idx
from ncollapse.data.lazy import LazyImageDataset
from ncollapse.data.loader import Augment, DeviceLoader, mixup
from ncollapse.data.longtail import (
    LongTailedSubset,
    LTManifest,
    class_counts,
    exp_profile,
    make_long_tailed,
    resolve_rho,
    sha256_indices,
    step_profile,
)
from ncollapse.data.maploader import LazyLoader, MapLoader, make_lazy_loader
from ncollapse.data.pipeline import load_train_test, loader_kind, make_train_loaders
from ncollapse.data.registry import (
    DATASETS,
    DatasetSpec,
    dataset_info,
    list_datasets,
    load_dataset,
    register_dataset,
    require_dataset,
)
from ncollapse.data.samplers import (
    ClassAwareSampler,
    ClassBalancedSampler,
    InstanceSampler,
    ReversedSampler,
    SquareRootSampler,
    make_sampler,
    sampler_class_probs,
)

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "Augment",
    "ClassAwareSampler",
    "ClassBalancedSampler",
    "DataFormatError",
    "DatasetSpec",
    "DeviceLoader",
    "InstanceSampler",
    "LTManifest",
    "LabelledDataset",
    "LazyImageDataset",
    "LazyLoader",
    "LongTailedSubset",
    "MapDataset",
    "MapLoader",
    "RestrictedUnpickler",
    "ReversedSampler",
    "SquareRootSampler",
    "as_dataset",
    "channel_stats",
    "class_counts",
    "dataset_info",
    "exp_profile",
    "is_resident",
    "list_datasets",
    "load_dataset",
    "require_dataset",
    "load_train_test",
    "loader_kind",
    "make_lazy_loader",
    "make_long_tailed",
    "make_sampler",
    "make_train_loaders",
    "mixup",
    "read_idx",
    "register_dataset",
    "resolve_rho",
    "sampler_class_probs",
    "sha256_indices",
    "step_profile",
    "write_idx",
]
