"""`python -m bench [name [flags...]]`: run every benchmark module in bench/, or the one named."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def available() -> list[str]:
    """Benchmark modules: every public module of this package that defines main()."""
    names = []
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("_") or info.ispkg:
            continue
        names.append(info.name)
    return sorted(names)


def run(name: str, argv: list[str]) -> int:
    module = importlib.import_module(f"bench.{name}")
    entry = getattr(module, "main", None)
    if entry is None:
        print(f"bench.{name} has no main(argv); skipped", file=sys.stderr)
        return 0
    print(f"=== bench {name} ===", flush=True)
    began = time.monotonic()
    code = entry(argv)
    print(f"=== bench {name}: exit {code} in {time.monotonic() - began:.1f}s ===", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = available()
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("benchmarks:", ", ".join(names) or "none")
        return 0
    if argv:
        name, rest = argv[0], argv[1:]
        if name not in names:
            print(f"no benchmark {name!r}; there are: {', '.join(names) or 'none'}", file=sys.stderr)
            return 2
        return run(name, rest)
    failed = [name for name in names if run(name, []) != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
