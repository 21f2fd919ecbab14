"""argparse, tuned for `ketch runtime`: usage errors are ours to report (exit 125 for run-like
commands, as docker does) and help is formatted without importing shutil (start-up time)."""

from __future__ import annotations

import argparse
import os

from ketch.cli.runtime.errors import UsageError


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str) -> None:
        # argparse would ask shutil for the terminal width, importing it (and bz2, lzma) on
        # every command, since add_argument builds a formatter to check each flag
        width = int(os.environ.get("COLUMNS", "0") or 0) or 100
        super().__init__(prog, width=width - 2)


class Parser(argparse.ArgumentParser):
    def __init__(self, prog: str, description: str = "", **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        if not prog.startswith("ketch runtime"):  # subparsers arrive with the full name
            prog = f"ketch runtime {prog}"
        super().__init__(prog=prog, description=description, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse's hook
        raise UsageError(message)
