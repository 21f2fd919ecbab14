"""`ketch annotate`: the same mechanics as `ketch label`, on metadata.annotations."""

from ketch.cli.commands.label import run

__all__ = ["run"]
