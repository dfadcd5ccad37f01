"""Contained paths and explicit roots (issue 16): list entries stay inside the image root, and an
explicit data root that does not exist is an error naming it, never a silent fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_fixtures import write_cifar10, write_imagenet_lt, write_png_images
from ncollapse.cli import main
from ncollapse.data import DataFormatError, LazyImageDataset, dataset_info, load_dataset
from ncollapse.errors import DataNotFoundError, NCollapseError


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("NCOLLAPSE_DATA", raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


def _outside_png(tmp_path: Path) -> Path:
    """A real, readable image outside the image root: reading it would succeed."""
    write_png_images(tmp_path / "secret", [("x.png", 0)], size=(20, 24))
    return tmp_path / "secret" / "x.png"


def _bad_entries(tmp_path: Path) -> list[tuple[str, str]]:
    """(entry as written, the resolved path it reaches) for each way out of the root."""
    root = tmp_path / "ilsvrc"
    outside = _outside_png(tmp_path)
    return [
        ("../secret/x.png", str(outside)),
        (str(outside), str(outside)),  # absolute
        ("../../etc/passwd", str((root / "../../etc/passwd").resolve())),
        ("train/../../secret/x.png", str(outside)),
    ]


@pytest.mark.parametrize("case", range(4))
def test_imagenet_lt_list_entries_must_stay_inside_the_root(tmp_path, capsys, case):
    root = tmp_path / "ilsvrc"
    rows, _ = write_imagenet_lt(root)
    entry, resolved = _bad_entries(tmp_path)[case]
    first = rows["train"][0][0]
    (root / "ImageNet_LT_train.txt").write_text(f"{first} 0\n{entry} 1\n")
    with pytest.raises(DataFormatError) as ei:
        load_dataset("imagenet-lt", "train", root=root, num_classes=3)
    msg = str(ei.value)
    assert "ImageNet_LT_train.txt:2:" in msg and "leaves the image root" in msg
    assert "\n" not in msg and resolved not in msg and entry not in msg
    assert "passwd" not in msg and "secret" not in msg
    # through the CLI: one line, exit 2, nothing echoed
    rc = main(["data", "show", "imagenet-lt", "--data-root", str(root), "--no-plot"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert resolved not in err and "Traceback" not in err


def test_inside_entries_and_folded_dots_are_fine(tmp_path):
    root = tmp_path / "ilsvrc"
    rows, imgs = write_imagenet_lt(root)
    name = rows["val"][1][0]
    (root / "ImageNet_LT_val.txt").write_text(f"./train/../{name} 1\n{name} 1\n")
    ds = load_dataset("imagenet-lt", "val", root=root, num_classes=3, size=None, resize=None)
    assert np.array_equal(ds[0][0].numpy(), imgs[name]) and len(ds) == 2


@pytest.mark.parametrize("case", range(4))
def test_csv_list_entries_must_stay_inside_the_root(tmp_path, case):
    d = tmp_path / "ilsvrc"
    write_png_images(d, [("im/a.png", 0)])
    entry, resolved = _bad_entries(tmp_path)[case]
    (d / "train.csv").write_text(f"path,label\nim/a.png,cat\n{entry},dog\n")
    with pytest.raises(DataFormatError) as ei:
        load_dataset("csv-list", "train", root=d)
    msg = str(ei.value)
    assert "train.csv:3:" in msg and resolved not in msg and entry not in msg


def test_lazy_dataset_with_a_root_refuses_outside_paths(tmp_path):
    outside = _outside_png(tmp_path)
    (tmp_path / "root").mkdir()
    for bad in ["../secret/x.png", str(outside), "a/../../secret/x.png", ""]:
        with pytest.raises(NCollapseError, match="path 1 of the dataset leaves its image root"):
            LazyImageDataset(["ok.png", bad], [0, 0], tmp_path / "root", 1)
    # without a root, paths are the caller's own: absolute paths are used as given
    ds = LazyImageDataset([str(outside)], [0], None, 1, size=None, resize=None)
    assert ds[0][0].shape == (3, 20, 24)


# ------------------------------------------------------------------------- explicit roots
def test_explicit_root_that_does_not_exist_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    store = tmp_path / "store"
    write_cifar10(store / "cifar10")
    monkeypatch.setenv("NCOLLAPSE_DATA", str(store))
    assert len(load_dataset("cifar10", "test")) == 8  # found in $NCOLLAPSE_DATA without a root
    missing = tmp_path / "nonexistent"
    with pytest.raises(DataNotFoundError) as ei:
        load_dataset("cifar10", "test", root=missing)  # used to read $NCOLLAPSE_DATA silently
    msg = str(ei.value)
    assert f"data root {missing} does not exist" in msg and "\n" not in msg
    assert str(store / "cifar10") in msg and "cifar-10-python.tar.gz" in msg
    for name in ("digits", "image-folder", "csv-list", "imagenet-lt"):
        with pytest.raises(DataNotFoundError, match=f"data root {missing} does not exist"):
            load_dataset(name, root=missing)
    with pytest.raises(DataNotFoundError, match=f"data root {missing} does not exist"):
        dataset_info("cifar10", root=missing)


def test_data_list_with_a_missing_root_says_so(tmp_path, capsys):
    missing = tmp_path / "nonexistent"
    rc = main(["data", "list", "--data-root", str(missing)])
    cap = capsys.readouterr()
    assert rc == 2 and cap.out == ""
    assert cap.err.startswith("error: ") and cap.err.count("\n") == 1
    assert f"data root {missing} does not exist" in cap.err
    rc = main(["data", "list", "--data-root", str(tmp_path), "--json"])
    assert rc == 0  # an existing root is searched as before


def test_imagenet_lt_splits_share_one_label_space(tmp_path):
    root = tmp_path / "ilsvrc"
    rows, _ = write_imagenet_lt(root)
    # the test list holds a class the train list lacks: every split still gets K = 4
    (root / "ImageNet_LT_test.txt").write_text(f"{rows['val'][0][0]} 3\n")
    ks = [load_dataset("imagenet-lt", s, root=root).num_classes for s in ("train", "val", "test")]
    assert ks == [4, 4, 4]
    assert load_dataset("imagenet-lt", "val", root=root, num_classes=7).num_classes == 7
