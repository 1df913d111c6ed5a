"""The `vpsfleet` command. Each module of `vpsfleet.commands` registers its own sub-commands."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

import vpsfleet.commands
from vpsfleet.environments import UnknownEnvironment
from vpsfleet.loader import FleetInvalid


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vpsfleet", description="The fleet model: validate, show, allocate addresses, ..."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(vpsfleet.commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"vpsfleet.commands.{module.name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except FleetInvalid as err:
        print(err.render(), file=sys.stderr)
        print(f"{len(err.problems)} problem(s): fix them first; nothing was applied.", file=sys.stderr)
        return 1
    except UnknownEnvironment as err:
        print(f"vpsfleet: {err}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
