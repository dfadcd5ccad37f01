"""Former home of the dataset container, path search, readers and registry, kept so that old
imports (``from ncollapse.data.datasets import ArrayDataset, load_dataset, ...``) keep working.
New code imports from :mod:`ncollapse.data` (or :mod:`~ncollapse.data.base`,
:mod:`~ncollapse.data.registry`, :mod:`~ncollapse.data.readers`)."""

from ncollapse.data.base import ArrayDataset, channel_stats
from ncollapse.data.readers.lists import read_split_list
from ncollapse.data.registry import (
    DatasetSpec,
    dataset_info,
    list_datasets,
    load_dataset,
    register_dataset,
)
from ncollapse.data.search import Found

__all__ = [
    "ArrayDataset",
    "DatasetSpec",
    "Found",
    "channel_stats",
    "dataset_info",
    "list_datasets",
    "load_dataset",
    "read_split_list",
    "register_dataset",
]
