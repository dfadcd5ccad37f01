"""Image folders: ``<root>/<class>/<image>`` or ``<root>/<split>/<class>/<image>``."""

from __future__ import annotations

from pathlib import Path

from ncollapse.data.formats import DataFormatError
from ncollapse.data.lazy import IMAGE_EXTENSIONS, LazyImageDataset


def locate_folder(root: Path, split: str | None, opts: dict) -> tuple[Path | None, list[str]]:
    return (root if root.is_dir() else None), [str(root)]


def read_image_folder(folder: Path, split: str, **opts) -> LazyImageDataset:
    """One sub-folder per class (sorted names are the classes, 0..K-1); ``size=`` resizes."""
    base = folder / split if (folder / split).is_dir() else folder
    classes = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
    if split in classes or not classes:
        raise DataFormatError(f"{base}: expected one sub-folder per class (<root>/<class>/<image>)")
    paths, labels = [], []
    for k, c in enumerate(classes):
        files = sorted(p for p in (base / c).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        paths += [str(p.relative_to(base)) for p in files]
        labels += [k] * len(files)
    if not paths:
        raise DataFormatError(f"{base}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found")
    return LazyImageDataset(
        paths,
        labels,
        base,
        len(classes),
        "image-folder",
        classes,
        size=opts.get("size"),
        resize=opts.get("resize", opts.get("size")),
        train=False,
        mode=opts.get("mode", "RGB"),
        mean=None,
        std=None,
    )
