"""Exit codes and error output of `ketch runtime`, as docker users expect them."""

from __future__ import annotations

import sys

EXIT_DAEMON = 125        # the daemon or the runtime failed (docker run's 125)
EXIT_CANNOT_INVOKE = 126
EXIT_NOT_FOUND = 127


class UsageError(Exception):
    """Bad flags or arguments: printed with a hint, exit 125 for run/create, else 1."""


def fail(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
