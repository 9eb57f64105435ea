"""Regenerate the Python code of every .proto under protos/ (`make protos`).

Writes messages (+ .pyi), gRPC stubs and typed gRPC stubs (mypy-protobuf) into
libs/common/src/taskforge/, which holds nothing hand-written: it is deleted and rewritten, with
an __init__.py in every package and a py.typed marker. A test regenerates into a temporary
directory and fails on any difference.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
DEFAULT_OUT = ROOT / "libs" / "common" / "src"
PACKAGE = "taskforge"


def generate(out: Path) -> None:
    target = out / PACKAGE
    if target.exists():
        shutil.rmtree(target)
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    plugin = Path(sys.executable).parent / "protoc-gen-mypy_grpc"
    arguments = [
        "grpc_tools.protoc",
        f"--proto_path={PROTOS}",
        f"--proto_path={well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy_grpc={plugin}",
        f"--mypy_grpc_out={out}",
        *sources,
    ]
    if protoc.main(arguments) != 0:
        raise SystemExit("protoc failed")
    for directory in sorted({target, *(p.parent for p in target.rglob("*.py"))}):
        while directory != out:
            (directory / "__init__.py").touch()
            directory = directory.parent
    (target / "py.typed").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output root")
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
