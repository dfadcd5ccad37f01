"""Run every benchmark in this folder, print one table each and write results/<name>.json.

Usage: python benchmarks/run_all.py [--quick] [NAME ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import print_rows, save  # noqa: E402


def discover() -> list[Path]:
    return sorted(
        p for p in HERE.glob("*.py") if not p.name.startswith("_") and p.name != "run_all.py"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", help="benchmark module names (default: all)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = ap.parse_args()
    failed = 0
    for path in discover():
        if args.names and path.stem not in args.names:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        result = mod.run(quick=args.quick)
        out = save(result)
        print_rows(result)
        print(f"wrote {out.relative_to(HERE.parent)}")
        failed += sum(1 for r in result["rows"] if r.get("ok") is False)
    print(f"{failed} goal(s) missed" if failed else "all goals met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
