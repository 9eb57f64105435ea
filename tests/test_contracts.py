"""The contracts: generated code matches protos/ exactly, buf lint and format pass, and every
RPC that API.md names exists."""

from __future__ import annotations

import filecmp
import importlib
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from scripts.gen_protos import DEFAULT_OUT, PACKAGE, generate
from taskforge.metering.v1 import metering_service_pb2
from taskforge.payments.v1 import payment_service_pb2
from taskforge.subscriptions.v1 import subscription_service_pb2
from tests.ci import unavailable

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
        unavailable("buf is not installed: run `make setup`")
    result = subprocess.run(
        [str(BUF), *arguments], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Every RPC API.md names, per service; the contracts may add more, never fewer.
CONTRACT = {
    (metering_service_pb2, "MeteringService"): [
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
    ],
    (subscription_service_pb2, "SubscriptionService"): [
        "ListPlans",
        "CreateSubscription",
        "GetSubscription",
        "ChangeTier",
        "CancelSubscription",
        "ListInvoices",
        "GetInvoice",
        "GetInvoicePdf",
        "PreviewInvoice",
        "GetBillingSummary",
        "RunBillingCycle",
        "VoidInvoice",
        "ApplyPayment",
        "GetCreditBalance",
        "ListCreditNotes",
        "SetTaxRate",
        "ListEvents",
    ],
    (payment_service_pb2, "PaymentService"): [
        "SetDefaultPaymentMethod",
        "ProcessPayment",
        "ChargeInvoice",
        "RefundPayment",
        "GetPayment",
        "ListPayments",
        "RecordManualPayment",
        "RunDunning",
        "HandleGatewayWebhook",
    ],
}


@pytest.mark.parametrize(("module", "service_name"), list(CONTRACT))
def test_every_rpc_of_the_contract_exists(module: ModuleType, service_name: str) -> None:
    service = module.DESCRIPTOR.services_by_name[service_name]
    names = {method.name for method in service.methods}
    assert set(CONTRACT[(module, service_name)]) <= names
    for method in service.methods:
        assert method.input_type.name == f"{method.name}Request"
        assert method.output_type.name == f"{method.name}Response"


def test_every_generated_module_imports() -> None:
    modules = sorted((DEFAULT_OUT / PACKAGE).rglob("*_pb2*.py"))
    assert len(modules) >= 20
    for path in modules:
        name = ".".join(path.relative_to(DEFAULT_OUT).with_suffix("").parts)
        assert importlib.import_module(name) is not None


def test_generated_tree_holds_no_hand_written_modules() -> None:
    hand_written = [
        p
        for p in (DEFAULT_OUT / PACKAGE).rglob("*.py")
        if not (p.name == "__init__.py" or p.stem.endswith(("_pb2", "_pb2_grpc")))
    ]
    assert not hand_written
