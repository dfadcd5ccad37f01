"""ncollapse.data: long-tailed builders, offline readers and a device-resident loader.

* :func:`load_dataset` / :func:`list_datasets` / :func:`dataset_info` -- offline readers by name
  (Fashion-MNIST, MNIST, EMNIST, MNIST-5k, digits, MNIST-1D, CIFAR-10/100, SVHN, STL-10,
  ImageNet-LT, image folders, CSV file lists); nothing is ever downloaded.
* :func:`exp_profile`, :func:`step_profile`, :func:`make_long_tailed`, :class:`LTManifest` --
  LDAM-exact long-tailed subsets of any labelled data, with a manifest that rebuilds them.
* :func:`make_sampler` (instance / class-balanced / square-root / reversed), :class:`DeviceLoader`
  with :class:`Augment`, :func:`mixup`, and :class:`LazyImageDataset` + :func:`make_lazy_loader`.

Convention: ``rho = n_max / n_min >= 1``; ``tau = 1 / rho`` only through ``tau=``.
"""

from ncollapse.data.datasets import (
    ArrayDataset,
    DatasetSpec,
    channel_stats,
    dataset_info,
    list_datasets,
    load_dataset,
    register_dataset,
)
from ncollapse.data.formats import DataFormatError, RestrictedUnpickler, read_idx, write_idx
from ncollapse.data.lazy import LazyImageDataset, LazyLoader, make_lazy_loader
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
    "ArrayDataset",
    "Augment",
    "ClassAwareSampler",
    "ClassBalancedSampler",
    "DataFormatError",
    "DatasetSpec",
    "DeviceLoader",
    "InstanceSampler",
    "LTManifest",
    "LazyImageDataset",
    "LazyLoader",
    "LongTailedSubset",
    "RestrictedUnpickler",
    "ReversedSampler",
    "SquareRootSampler",
    "channel_stats",
    "class_counts",
    "dataset_info",
    "exp_profile",
    "list_datasets",
    "load_dataset",
    "make_lazy_loader",
    "make_long_tailed",
    "make_sampler",
    "mixup",
    "read_idx",
    "register_dataset",
    "resolve_rho",
    "sampler_class_probs",
    "sha256_indices",
    "step_profile",
    "write_idx",
]
