"""The ``nnspec`` command line."""

from __future__ import annotations

import argparse
from importlib.metadata import version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nnspec")
    parser.add_argument("--version", action="version", version=f"nnspec {version('nnspec')}")
    parser.parse_args(argv)
    return 0
