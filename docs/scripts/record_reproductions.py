"""Copy the reports of finished reproductions into docs/reproductions/ and record their verdicts.

    python docs/scripts/record_reproductions.py seli-deepnet liu-fig1 ... [--scale here]

For each id it copies ``outputs/reproduce/ID/SCALE/`` (the report: predictions.md / .csv, tables,
figures, results.json, recipe.yaml; not the run folders) to ``docs/reproductions/ID/`` and writes
the verdict into the package's recorded verdicts (``ncollapse reproduce list`` on a fresh install).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from ncollapse.reproduce.catalogue import get_reproduction, record_verdicts

REPO = Path(__file__).resolve().parents[2]
KEEP = (".md", ".csv", ".png", ".json", ".yaml")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ids", nargs="+")
    ap.add_argument("--scale", default="here")
    args = ap.parse_args()
    entries = {}
    for id in args.ids:
        e = get_reproduction(id)
        src = REPO / "outputs" / "reproduce" / id / args.scale
        if not (src / "results.json").is_file():
            src = REPO / e.out_dir
        if not (src / "results.json").is_file():
            raise SystemExit(f"{id}: no results.json in {src}; run `{e.command}` first")
        dst = REPO / "docs" / "reproductions" / id
        dst.mkdir(parents=True, exist_ok=True)
        for f in sorted(src.iterdir()):
            if f.is_file() and f.suffix in KEEP:
                shutil.copy2(f, dst / f.name)
        entries[id] = (src, args.scale)
        print(f"{id}: {src} -> {dst}")
    rec = record_verdicts(entries, time.strftime("%Y-%m-%d"))
    for id in args.ids:
        print(f"{id}: {rec[id]['verdict']}")


if __name__ == "__main__":
    main()
