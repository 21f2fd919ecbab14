"""argparse set up for start-up speed: every command's parser comes from here.

argparse's HelpFormatter imports `shutil` (~3 ms) to read the terminal width,
and `add_argument` builds a formatter each time; the width is only needed for
`--help`, so it is looked up then.
"""

from __future__ import annotations

import argparse
import os


class _LazyWidthFormatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None):
        if width is None:
            width = int(os.environ.get("COLUMNS", "100")) - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 30,
                 width: int | None = None):
        if width is None:
            import shutil

            width = shutil.get_terminal_size().columns - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _LazyWidthFormatter)
        super().__init__(*args, **kwargs)

    def format_help(self) -> str:
        self.formatter_class = _HelpFormatter
        return super().format_help()


def parser(prog: str, description: str) -> Parser:
    return Parser(prog=prog, description=description)
