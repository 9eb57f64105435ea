"""The invoice PDF (SPEC §4): rendered from Invoice values, read back with pypdf, and checked for
every figure and date a customer needs, page breaks, determinism and non-latin-1 text."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader

from taskforge_common.money import Money
from taskforge_subscriptions.domain.invoices import (
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Totals,
    compute_totals,
)
from taskforge_subscriptions.rendering import (
    DEFAULT_ISSUER,
    Issuer,
    invoice_pdf_filename,
    render_invoice_pdf,
)
from taskforge_subscriptions.rendering.text import to_latin1

D = Decimal
START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)
ISSUED = datetime(2026, 4, 1, 1, 0, 5, tzinfo=UTC)
ARROW = "Upgrade Starter → Pro, prorated (2026-03-15 – 2026-04-01)"
LONG = (
    "Compute minutes on dedicated workers for the nightly ingestion pipeline including "
    "retries of jobs that exceeded their visibility timeout and were redelivered to another "
    "worker pool in the secondary region during the maintenance window"
)


def line(
    description: str,
    amount: str,
    quantity: str = "1",
    unit_price: str | None = None,
    *,
    currency: str = "USD",
    kind: LineKind = LineKind.USAGE,
    start: datetime = START,
    end: datetime = END,
) -> InvoiceLine:
    return InvoiceLine(
        kind=kind,
        description=description,
        amount=Money(D(amount), currency),
        quantity=D(quantity),
        unit_price=None if unit_price is None else D(unit_price),
        period_start=start,
        period_end=end,
    )


SPEC_LINES = (
    line("Pro plan, monthly (2026-03-01 – 2026-04-01)", "29.00", "1", "29.00", kind=LineKind.FEE),
    line("Job executions", "3.50", "35000", "0.0001"),
    line("Worker minutes", "6.00", "1200.000", "0.005"),
)


def invoice(
    lines: tuple[InvoiceLine, ...] = SPEC_LINES,
    *,
    status: InvoiceStatus = InvoiceStatus.SENT,
    number: str | None = "INV-2026-000042",
    credit: str = "5.00",
    currency: str = "USD",
    tax_rate: str = "0.10",
) -> Invoice:
    totals = compute_totals(
        (item.amount for item in lines), D(tax_rate), Money(D(credit), currency)
    )
    final = number is not None
    return Invoice(
        id="inv_7Hq2xK",
        organization_id="org_acme42",
        subscription_id="sub_9fTz",
        kind=InvoiceKind.PERIOD_END,
        status=status,
        currency=currency,
        period_start=START,
        period_end=END,
        lines=lines,
        totals=totals,
        created_at=END,
        number=number,
        issued_at=ISSUED if final else None,
        due_at=ISSUED + timedelta(days=30) if final else None,
        paid_at=ISSUED if status is InvoiceStatus.PAID else None,
    )


def read(pdf: bytes) -> tuple[PdfReader, str]:
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def flat(text: str) -> str:
    """Extracted text with every run of whitespace (line wraps included) as one space."""
    return " ".join(text.split())


def test_a_finalized_invoice_shows_every_figure_date_and_line() -> None:
    subject = invoice()
    reader, text = read(render_invoice_pdf(subject, DEFAULT_ISSUER))

    assert len(reader.pages) == 1
    for expected in (
        "TaskForge Billing",
        "Invoice",
        "INV-2026-000042",
        "Issue date 2026-04-01",
        "Due date 2026-05-01",
        "Billing period 2026-03-01 to 2026-04-01 (UTC)",
        "Organisation org_acme42",
        "Currency USD",
        "Status Sent",
        # Lines: description, quantity (no trailing zeros), unit price as given, amount.
        "Pro plan, monthly (2026-03-01 - 2026-04-01) 1 29.00 29.00",
        "Job executions 35000 0.0001 3.50",
        "Worker minutes 1200 0.005 6.00",
        "Subtotal 38.50",
        "Tax (10%) 3.85",
        "Total 42.35",
        "Credit applied -5.00",
        "Amount due USD 37.35",
        "Please pay USD 37.35 by 2026-05-01, quoting INV-2026-000042.",
    ):
        assert expected in text, expected
    for absent in ("DRAFT", "PAID", "VOID"):
        assert absent not in text


def test_figures_come_from_the_invoice_and_are_never_recomputed() -> None:
    stored = Totals(
        subtotal=Money(D("111.11"), "USD"),
        tax_rate=D("0.075"),
        tax=Money(D("8.33"), "USD"),
        total=Money(D("119.44"), "USD"),
        credit_applied=Money(D("0.00"), "USD"),
        amount_due=Money(D("119.44"), "USD"),
    )
    _, text = read(render_invoice_pdf(replace(invoice(), totals=stored), DEFAULT_ISSUER))

    for expected in (
        "Subtotal 111.11",
        "Tax (7.5%) 8.33",
        "Total 119.44",
        "Credit applied 0.00",
        "Amount due USD 119.44",
    ):
        assert expected in text, expected
    assert "38.50" not in text  # what the lines would sum to


def test_a_draft_is_labelled_and_has_no_number() -> None:
    draft = invoice(status=InvoiceStatus.DRAFT, number=None)
    _, text = read(render_invoice_pdf(draft, DEFAULT_ISSUER))

    assert "DRAFT - not a tax invoice" in text
    assert "Invoice number not assigned (draft)" in text
    assert "Issue date not issued (draft)" in text
    assert "INV-" not in text
    assert "Amount due USD 37.35" in text
    assert invoice_pdf_filename(draft) == "draft-inv_7Hq2xK.pdf"


def test_file_names() -> None:
    assert invoice_pdf_filename(invoice()) == "INV-2026-000042.pdf"
    odd = replace(invoice(number=None), id="inv/../x y")
    assert invoice_pdf_filename(odd) == "draft-inv_.._x_y.pdf"


@pytest.mark.parametrize(
    ("status", "label"),
    [
        (InvoiceStatus.PAID, "PAID"),
        (InvoiceStatus.VOID, "VOID"),
        (InvoiceStatus.REFUNDED, "REFUNDED"),
    ],
)
def test_settled_and_voided_invoices_carry_their_status_label(
    status: InvoiceStatus, label: str
) -> None:
    _, text = read(render_invoice_pdf(invoice(status=status), DEFAULT_ISSUER))

    assert label in text
    assert "Please pay" not in text  # only open invoices ask for payment


def test_a_paid_invoice_says_when() -> None:
    _, text = read(render_invoice_pdf(invoice(status=InvoiceStatus.PAID), DEFAULT_ISSUER))
    assert "Status Paid 2026-04-01" in text


def test_sixty_lines_span_several_pages_and_every_line_is_there() -> None:
    lines = tuple(
        line(f"Usage meter {index:02d}", f"{index + 1}.{index:02d}", str(index + 1), "1.00")
        for index in range(60)
    )
    subject = invoice(lines)
    reader, text = read(render_invoice_pdf(subject, DEFAULT_ISSUER))

    assert len(reader.pages) >= 3
    for index in range(60):
        row = f"Usage meter {index:02d} {index + 1} 1.00 {index + 1}.{index:02d}"
        assert text.count(row) == 1, row
    # The column headings and the invoice's reference repeat on every page.
    assert text.count("Description Quantity Unit price (USD) Amount (USD)") == len(reader.pages)
    for number, page in enumerate(reader.pages, start=1):
        page_text = page.extract_text()
        assert "INV-2026-000042" in page_text
        assert f"Page {number} of {len(reader.pages)}" in page_text
    assert f"Subtotal {subject.totals.subtotal}" in text
    assert f"Amount due USD {subject.totals.amount_due}" in text


def test_the_same_invoice_renders_to_the_same_bytes() -> None:
    subject = invoice((*SPEC_LINES, line(ARROW, "9.50")))
    first = render_invoice_pdf(subject, DEFAULT_ISSUER)
    second = render_invoice_pdf(replace(subject), DEFAULT_ISSUER)

    assert first == second
    reader, _ = read(first)
    assert reader.metadata is not None
    assert reader.metadata.creation_date == ISSUED
    assert reader.metadata.title == "Invoice INV-2026-000042"


def test_a_draft_is_dated_by_its_creation() -> None:
    reader, _ = read(render_invoice_pdf(invoice(number=None), DEFAULT_ISSUER))
    assert reader.metadata is not None
    assert reader.metadata.creation_date == END


def test_arrows_and_dashes_render_transliterated() -> None:
    _, text = read(render_invoice_pdf(invoice((line(ARROW, "9.50"),)), DEFAULT_ISSUER))
    assert "Upgrade Starter -> Pro, prorated (2026-03-15 - 2026-04-01)" in flat(text)


def test_a_long_description_wraps_and_keeps_every_word() -> None:
    _, text = read(render_invoice_pdf(invoice((line(LONG, "12.34", "2468"),)), DEFAULT_ISSUER))

    assert LONG in flat(text)
    assert not any(LONG in extracted for extracted in text.splitlines())  # it did wrap
    assert "2468" in text
    assert "12.34" in text


def test_a_line_billed_for_another_period_shows_it() -> None:
    proration = line(
        "Upgrade to Team",
        "14.52",
        kind=LineKind.PRORATION,
        start=datetime(2026, 3, 18, 9, 30, tzinfo=UTC),
    )
    _, text = read(render_invoice_pdf(invoice((*SPEC_LINES, proration)), DEFAULT_ISSUER))

    assert "Upgrade to Team Period 2026-03-18 to 2026-04-01" in flat(text)
    # The invoice's own period is not repeated under every usage line.
    assert text.count("Period 2026-03-01 to 2026-04-01") == 0


def test_places_follow_the_currency() -> None:
    yen = (
        line("Worker minutes", "1200", "2.500", "480", currency="JPY"),
        line("Storage", "33", "0.33000", "100.00", currency="JPY"),
    )
    _, text = read(render_invoice_pdf(invoice(yen, credit="0", currency="JPY"), DEFAULT_ISSUER))

    assert "Worker minutes 2.5 480 1200" in text
    assert "Storage 0.33 100.00 33" in text  # unit prices as given, quantities canonical
    assert "Subtotal 1233" in text
    assert "Tax (10%) 123" in text
    assert "Amount due JPY 1356" in text
    assert "Amount (JPY)" in text


def test_the_issuer_is_printed() -> None:
    issuer = Issuer(
        name="TaskForge Ltd",
        address_lines=("1 Queue Street", "Łódź 90-001, Poland"),
        tax_id="PL1234567890",
    )
    _, text = read(render_invoice_pdf(invoice(), issuer))

    assert "TaskForge Ltd" in text
    assert "1 Queue Street" in text
    assert "Lódz 90-001, Poland" in text  # ó is latin-1; Ł spelled, ź decomposed
    assert "Tax ID: PL1234567890" in text


def test_a_tax_exempt_invoice() -> None:
    _, text = read(render_invoice_pdf(invoice(tax_rate="0"), DEFAULT_ISSUER))
    assert "Tax (0%) 0.00" in text
    assert "Total 38.50" in text


def test_naive_instants_are_refused() -> None:
    naive = replace(invoice(), period_start=datetime(2026, 3, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        render_invoice_pdf(naive, DEFAULT_ISSUER)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Starter → Pro", "Starter -> Pro"),
        ("2026-03-01 – 2026-04-01", "2026-03-01 - 2026-04-01"),
        ("DRAFT — not a tax invoice", "DRAFT - not a tax invoice"),
        ("“quoted” ‘single’", "\"quoted\" 'single'"),
        ("wait…", "wait..."),
        ("€12", "EUR12"),
        ("café × 3 · £5", "café × 3 · £5"),  # latin-1 stays as it is
        ("Kő ﬁle", "Ko file"),  # decomposed
        ("Łukasz Œuvre", "Lukasz OEuvre"),  # spelled: no decomposition
        ("東京", "??"),
        ("a\tb\x00c\nd", "a b c\nd"),
        ("zero\u200bwidth", "zerowidth"),
    ],
)
def test_to_latin1(text: str, expected: str) -> None:
    assert to_latin1(text) == expected


@given(st.text())
def test_to_latin1_always_encodes(text: str) -> None:
    to_latin1(text).encode("latin-1")
