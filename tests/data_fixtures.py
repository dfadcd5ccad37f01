"""Writers of tiny dataset files in the exact on-disk formats (shared by the tests/test_data_*.py).

Each writer returns the arrays it wrote, in the layout ncollapse's readers must return
(uint8 N x C x H x W images, int64 labels 0..K-1), computed here independently of the readers.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np


def rand_images(n, c, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def balanced_labels(n, k, seed=0):
    y = np.arange(n) % k
    np.random.default_rng(seed + 1).shuffle(y)
    return y.astype(np.int64)


def idx_file_bytes(arr: np.ndarray) -> bytes:
    """IDX written from the format definition: 0, 0, type 0x08, ndim, big-endian sizes, data."""
    arr = np.asarray(arr, dtype=np.uint8)
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return head + arr.tobytes()


def write_bytes(path: Path, data: bytes, gz: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def write_mnist_like(folder: Path, n_train=30, n_test=20, h=28, w=28, gz=True, seed=0):
    """train-/t10k- images-idx3-ubyte + labels-idx1-ubyte (MNIST and Fashion-MNIST layout)."""
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x = rand_images(n, 1, h, w, seed + (split == "test"))
        y = balanced_labels(n, 10, seed)
        write_bytes(folder / f"{prefix}-images-idx3-ubyte", idx_file_bytes(x[:, 0]), gz)
        write_bytes(folder / f"{prefix}-labels-idx1-ubyte", idx_file_bytes(y), gz)
        out[split] = (x, y)
    return out


def write_emnist(folder: Path, variant="balanced", n=24, k=47, seed=0, label_offset=0):
    """EMNIST gzip IDX: each image stored TRANSPOSED (file holds img.T); mapping file too."""
    out = {}
    for split in ("train", "test"):
        x = rand_images(n, 1, 28, 28, seed + (split == "test"))
        y = balanced_labels(n, k, seed)
        stored = np.ascontiguousarray(x[:, 0].transpose(0, 2, 1))
        write_bytes(
            folder / f"emnist-{variant}-{split}-images-idx3-ubyte", idx_file_bytes(stored), True
        )
        write_bytes(
            folder / f"emnist-{variant}-{split}-labels-idx1-ubyte",
            idx_file_bytes(y + label_offset),
            True,
        )
        out[split] = (x, y)
    if variant == "letters":  # real file: "1 65 97" = label, upper-case code, lower-case code
        lines = [f"{i + 1} {65 + i} {97 + i}\n" for i in range(26)]
    else:
        codes = (
            [48 + i for i in range(10)] + [65 + i for i in range(26)] + [97 + i for i in range(26)]
        )
        lines = [f"{i} {codes[i]}\n" for i in range(k)]
    (folder / f"emnist-{variant}-mapping.txt").write_text("".join(lines))
    return out


def cifar_batch(
    x: np.ndarray, labels: np.ndarray, label_key: bytes, extra: dict | None = None
) -> dict:
    d = {
        b"batch_label": b"training batch",
        label_key: [int(v) for v in labels],
        b"data": np.ascontiguousarray(x.reshape(x.shape[0], -1)),  # R(1024) G(1024) B(1024)
        b"filenames": [f"img_{i}.png".encode() for i in range(x.shape[0])],
    }
    d.update(extra or {})
    return d


def write_cifar10(root: Path, per_batch=6, test_n=8, protocol=2, seed=0):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for i in range(1, 6):
        x = rand_images(per_batch, 3, 32, 32, seed + i)
        y = balanced_labels(per_batch, 10, seed + i)
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump(cifar_batch(x, y, b"labels"), f, protocol=protocol)
        xs.append(x)
        ys.append(y)
    xt, yt = rand_images(test_n, 3, 32, 32, seed + 9), balanced_labels(test_n, 10, seed + 9)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(cifar_batch(xt, yt, b"labels"), f, protocol=protocol)
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(
            {b"label_names": names, b"num_cases_per_batch": per_batch, b"num_vis": 3072},
            f,
            protocol=protocol,
        )
    return {"train": (np.concatenate(xs), np.concatenate(ys)), "test": (xt, yt), "folder": folder}


def write_cifar100(root: Path, n_train=20, n_test=10, seed=0):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    out = {"folder": folder}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rand_images(n, 3, 32, 32, seed + (split == "test"))
        y = balanced_labels(n, 100, seed)
        extra = {b"coarse_labels": [int(v) // 5 for v in y]}
        with open(folder / split, "wb") as f:
            pickle.dump(cifar_batch(x, y, b"fine_labels", extra), f, protocol=2)
        out[split] = (x, y)
    with open(folder / "meta", "wb") as f:
        pickle.dump(
            {
                b"fine_label_names": [f"c{i}".encode() for i in range(100)],
                b"coarse_label_names": [f"s{i}".encode() for i in range(20)],
            },
            f,
            protocol=2,
        )
    return out


def write_svhn(folder: Path, n_train=12, n_test=7, seed=0):
    """SVHN cropped digits: X is 32 x 32 x 3 x N (h, w, c, n); y is N x 1 with 10 for digit 0."""
    import scipy.io

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rand_images(n, 3, 32, 32, seed + (split == "test"))
        y = balanced_labels(n, 10, seed)
        X = np.zeros((32, 32, 3, n), dtype=np.uint8)
        for k in range(n):
            for c in range(3):
                X[:, :, c, k] = x[k, c]
        yf = np.where(y == 0, 10, y).reshape(-1, 1).astype(np.uint8)
        scipy.io.savemat(str(folder / f"{split}_32x32.mat"), {"X": X, "y": yf})
        out[split] = (x, y)
    return out


def write_stl10(root: Path, n_train=5, n_test=4, seed=0):
    """STL-10 binary: per image, channel by channel, each 96 x 96 plane in column-major order."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    out = {"folder": folder}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rand_images(n, 3, 96, 96, seed + (split == "test"))
        y = balanced_labels(n, 10, seed)
        raw = b"".join(x[k, c].flatten(order="F").tobytes() for k in range(n) for c in range(3))
        (folder / f"{split}_X.bin").write_bytes(raw)
        (folder / f"{split}_y.bin").write_bytes((y + 1).astype(np.uint8).tobytes())
        out[split] = (x, y)
    (folder / "class_names.txt").write_text(
        "\n".join(
            ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]
        )
        + "\n"
    )
    return out


def write_png_images(folder: Path, names_labels: list[tuple[str, int]], size=(10, 12), seed=0):
    """Write RGB PNGs (lossless) and return {relative name: uint8 C x H x W}."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = {}
    for name, _ in names_labels:
        arr = rng.integers(0, 256, size=(size[0], size[1], 3), dtype=np.uint8)
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr, "RGB").save(p, format="PNG")
        out[name] = arr.transpose(2, 0, 1).copy()
    return out


def write_imagenet_lt(root: Path, n_classes=3, per_class=(4, 2, 1), n_val=3, size=(20, 24)):
    """ImageNet_LT_{train,val,test}.txt ('path label' lines) + images under root (PNG content)."""
    rows = {"train": [], "val": [], "test": []}
    for c in range(n_classes):
        for i in range(per_class[c]):
            rows["train"].append((f"train/n{c:08d}/n{c:08d}_{i}.JPEG", c))
        rows["val"].append((f"val/ILSVRC2012_val_{c:08d}.JPEG", c))
        rows["test"].append((f"val/ILSVRC2012_val_{c:08d}.JPEG", c))
    images = {}
    for split in ("train", "val"):
        images.update(write_png_images(root, rows[split], size=size, seed=len(images)))
    for split, rs in rows.items():
        (root / f"ImageNet_LT_{split}.txt").write_text("".join(f"{p} {lab}\n" for p, lab in rs))
    return rows, images
