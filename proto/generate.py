"""Regenerate the Python gRPC stubs from proto/*.proto (`make proto`).

The stubs are committed so that nothing needs grpc_tools at run time; a unit
test (tests/unit/test_proto_stubs.py) regenerates them into a temporary
directory and fails when the committed ones are stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
REPO_ROOT = PROTO_DIR.parent


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Write <name>_pb2.py, <name>_pb2.pyi and <name>_pb2_grpc.py under out_dir/proto/.

    Paths are given relative to the repository root so the generated imports
    read `from proto import runtime_pb2`, the package the code imports.
    """
    import importlib.resources

    from grpc_tools import protoc  # dev dependency: only needed here

    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    target = out_dir / "proto"
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for proto in proto_files():
        rel = proto.relative_to(REPO_ROOT).as_posix()
        args = [
            "grpc_tools.protoc",
            f"-I{REPO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            rel,
        ]
        code = protoc.main(args)
        if code != 0:
            raise RuntimeError(f"protoc failed on {rel} (exit {code})")
        stem = proto.stem
        written += [target / f"{stem}_pb2.py", target / f"{stem}_pb2.pyi",
                    target / f"{stem}_pb2_grpc.py"]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO_ROOT,
                        help="directory that receives proto/<name>_pb2*.py (default: the repository)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
