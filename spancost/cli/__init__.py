"""The `spancost` command: a thin shell over the library (parse, call, render, exit code)."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from spancost.cli.app import cli
    except ImportError as err:  # click and rich come with the `cli` extra
        if err.name not in ("click", "rich"):
            raise
        sys.stderr.write(
            f"spancost: the command line needs {err.name}; install it with: pip install 'spancost[cli]'\n"
        )
        raise SystemExit(2) from err
    cli()
