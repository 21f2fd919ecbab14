"""`ketch create -f`: POST each object (no last-applied annotation); see apply.py."""

from ketch.cli.commands.apply import run

__all__ = ["run"]
