"""One structured log format for every Ketch daemon: ``key=value`` on one line."""

from __future__ import annotations

import logging
import sys


def setup_logging(component: str, level: str = "INFO") -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"ts=%(asctime)s level=%(levelname)s component={component} logger=%(name)s %(message)s",
    )
    # httpx logs every request at INFO; that is noise for a daemon.
    logging.getLogger("httpx").setLevel(logging.WARNING)
