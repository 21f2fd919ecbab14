#!/usr/bin/env python3
"""Write prometheus.yml for a lab: the same as `ketch monitoring-config` (see docs/monitoring.md).

Usage: deploy/prometheus/render.py [--name LAB] [--state-dir DIR] [--output-dir DIR] [--stdout]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ketch.cli.commands.monitoring import generate  # noqa: E402

if __name__ == "__main__":
    sys.exit(generate(sys.argv[1:]))
