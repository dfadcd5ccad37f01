"""Command-line entry point: a thin layer over the library API.

Each subsystem registers its commands from ``ncollapse.commands.<name>`` (a ``register(subparsers)``
function). Every command accepts ``--json``. Bad input prints one line to stderr and exits 2;
no traceback is shown unless ``NCOLLAPSE_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ncollapse.errors import NCollapseError

# Subsystems whose commands are registered, in help order. A missing module is skipped so the CLI
# stays usable while a subsystem is being built.
COMMAND_MODULES = [
    "geometry",
    "metrics",
    "ufm",
    "reproduce",
    "data",
    "train",
    "sweep",
    "report",
    "demo",
    "measure",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ncollapse",
        description="Neural collapse under class imbalance: geometry, metrics, UFM, data, training.",
    )
    from ncollapse import __version__

    parser.add_argument("--version", action="version", version=f"ncollapse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"ncollapse.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ncollapse.commands.{name}":
                continue
            raise
        mod.register(sub)
    return parser


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json", action="store_true", help="print machine-readable JSON instead of tables"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except NCollapseError as exc:
        if os.environ.get("NCOLLAPSE_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # read-only folder, full disk, a path under a file: one line, the path
        if os.environ.get("NCOLLAPSE_DEBUG"):
            raise
        from ncollapse.io import os_error_message

        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    raise SystemExit(main())
