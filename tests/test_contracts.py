"""The contracts: generated code matches protos/ exactly, buf lint and format pass, and every
RPC that API.md names exists."""

from __future__ import annotations

import filecmp
import os
import subprocess
from pathlib import Path

import pytest

from scripts.gen_protos import DEFAULT_OUT, PACKAGE, generate
from taskforge.metering.v1 import metering_service_pb2

ROOT = Path(__file__).resolve().parent.parent
BUF = ROOT / "node_modules" / ".bin" / "buf"


def differences(expected: Path, actual: Path) -> list[str]:
    comparison = filecmp.dircmp(expected, actual, ignore=["__pycache__"])
    found = [f"missing: {actual / name}" for name in comparison.left_only]
    found += [f"extra: {actual / name}" for name in comparison.right_only]
    found += [
        f"differs: {actual / name}"
        for name in comparison.common_files
        if not filecmp.cmp(expected / name, actual / name, shallow=False)
    ]
    for name in comparison.common_dirs:
        found += differences(expected / name, actual / name)
    return found


def test_generated_code_is_what_the_protos_generate(tmp_path: Path) -> None:
    generate(tmp_path)
    stale = differences(tmp_path / PACKAGE, DEFAULT_OUT / PACKAGE)
    assert not stale, "run `make protos` and commit the result:\n" + "\n".join(stale)


@pytest.mark.parametrize("arguments", [["lint"], ["format", "--exit-code"]])
def test_buf(arguments: list[str]) -> None:
    if not BUF.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("buf is not installed: run `make setup`")
        pytest.skip("buf is not installed (npm install)")
    result = subprocess.run(
        [str(BUF), *arguments], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_metering_service_has_every_rpc_of_the_contract() -> None:
    service = metering_service_pb2.DESCRIPTOR.services_by_name["MeteringService"]
    assert sorted(method.name for method in service.methods) == sorted(
        [
            "RecordUsage",
            "RecordUsageBatch",
            "CheckLimits",
            "ReserveUsage",
            "CommitReservation",
            "ReleaseReservation",
            "GetCurrentUsage",
            "GetUsageSummary",
            "ListUsageRecords",
            "UpsertEntitlements",
        ]
    )
    for method in service.methods:
        assert method.input_type.name == f"{method.name}Request"
        assert method.output_type.name == f"{method.name}Response"


def test_generated_tree_holds_no_hand_written_modules() -> None:
    hand_written = [
        p
        for p in (DEFAULT_OUT / PACKAGE).rglob("*.py")
        if not (p.name == "__init__.py" or p.stem.endswith(("_pb2", "_pb2_grpc")))
    ]
    assert not hand_written
