"""An invoice as a PDF document (SPEC §4): what GetInvoicePdf answers.

Every figure printed is read from the invoice: line amounts, subtotal, tax, total, credit applied
and amount due are never recomputed here, so the PDF says exactly what was finalized. The same
invoice renders to the same bytes: the document's creation date is the invoice's issue date (its
creation for a draft), and nothing else in the file depends on the clock.

fpdf2's core fonts (Helvetica) need no font file on any machine; they draw latin-1 only, so every
string goes through `to_latin1` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from fpdf import FPDF
from fpdf.fonts import FontFace

from taskforge_common.decimals import canonical, format_decimal
from taskforge_common.money import Money
from taskforge_subscriptions.domain.invoices import (
    OPEN_STATUSES,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
)
from taskforge_subscriptions.rendering.text import to_latin1


@dataclass(frozen=True, slots=True)
class Issuer:
    """Who issues the invoices: printed in the header of every one."""

    name: str
    address_lines: tuple[str, ...] = ()
    tax_id: str | None = None


# Until the issuer comes from settings.
DEFAULT_ISSUER = Issuer(name="TaskForge Billing")

# A4 in millimetres, and the layout's grid.
_MARGIN = 18.0
_BOTTOM_MARGIN = 22.0
_FONT = "helvetica"
_INK = (33, 37, 41)
_MUTED = (108, 117, 125)
_RULE = (206, 212, 218)
_ZEBRA = (246, 247, 249)
_HEADING_FILL = (233, 236, 239)
_DRAFT_RED = (176, 42, 55)
# Description, quantity, unit price, amount: fractions of the table's width.
_COLUMNS = (86, 22, 33, 33)
_TOTALS_WIDTH = 84.0
_CELL_PADDING = 2.0
# Large diagonal labels across every page, for invoices that are not simply open.
_STAMPS: dict[InvoiceStatus, tuple[str, tuple[int, int, int]]] = {
    InvoiceStatus.DRAFT: ("DRAFT", (176, 42, 55)),
    InvoiceStatus.PAID: ("PAID", (25, 135, 84)),
    InvoiceStatus.VOID: ("VOID", (176, 42, 55)),
    InvoiceStatus.CANCELLED: ("CANCELLED", (176, 42, 55)),
    InvoiceStatus.REFUNDED: ("REFUNDED", (13, 110, 253)),
}
_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


def invoice_pdf_filename(invoice: Invoice) -> str:
    """The number and ".pdf" (INV-2026-000042.pdf); draft-<id>.pdf before there is a number.
    Only [A-Za-z0-9._-], so it can go in a Content-Disposition header as it is."""
    stem = invoice.number if invoice.number is not None else f"draft-{invoice.id}"
    return f"{_UNSAFE_IN_FILENAME.sub('_', stem)}.pdf"


def render_invoice_pdf(invoice: Invoice, issuer: Issuer = DEFAULT_ISSUER) -> bytes:
    """The invoice as an A4 PDF: issuer, number (or the draft label), dates, bill-to, one table
    row per line, the totals and the amount due. Deterministic: same invoice, same bytes."""
    pdf = _InvoiceDocument(invoice, issuer)
    pdf.add_page()
    pdf.draw_heading()
    pdf.draw_details()
    pdf.draw_lines()
    pdf.draw_totals()
    pdf.draw_notes()
    return bytes(pdf.output())


def _utc_day(instant: datetime) -> str:
    if instant.tzinfo is None:
        raise ValueError(f"invoice instants are timezone-aware, got {instant!r}")
    return instant.astimezone(UTC).date().isoformat()


def _span(start: datetime, end: datetime) -> str:
    return f"{_utc_day(start)} to {_utc_day(end)}"


def _quantity(quantity: Decimal) -> str:
    return format_decimal(canonical(quantity))


def _unit_price(unit_price: Decimal | None) -> str:
    return "" if unit_price is None else format_decimal(unit_price)


def _percent(rate: Decimal) -> str:
    return f"{format_decimal(canonical(rate.scaleb(2)))}%"


def _credit(applied: Money) -> str:
    return f"-{applied}" if applied.amount > 0 else str(applied)


class _InvoiceDocument(FPDF):
    """One invoice's document; the page header and footer hooks repeat on every page."""

    def __init__(self, invoice: Invoice, issuer: Issuer) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.invoice = invoice
        self.issuer = issuer
        self.is_draft = invoice.number is None
        self.reference = (
            f"Invoice {invoice.number}" if invoice.number is not None else "Draft invoice"
        )
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(auto=True, margin=_BOTTOM_MARGIN)
        self.c_margin = _CELL_PADDING  # text outside the table lines up with the text inside
        self.set_creation_date(invoice.issued_at or invoice.created_at)
        self.set_title(self.reference if not self.is_draft else f"Draft invoice {invoice.id}")
        self.set_author(issuer.name)
        self.set_creator(issuer.name)
        self.set_subject(f"Invoice for organisation {invoice.organization_id}")
        self.set_lang("en")
        self.set_text_color(*_INK)
        self.set_draw_color(*_RULE)

    # -- text helpers: every string drawn goes through to_latin1 here ------------------------

    def _font(self, size: float, style: str = "", color: tuple[int, int, int] = _INK) -> None:
        self.set_font(_FONT, style, size)
        self.set_text_color(*color)

    def _line(self, text: str, width: float, align: str = "L", height: float = 5.0) -> None:
        self.cell(width, height, to_latin1(text), align=align, new_x="LMARGIN", new_y="NEXT")

    def _rule(self, gap: float = 3.0) -> None:
        self.ln(gap)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(gap)

    # -- FPDF hooks --------------------------------------------------------------------------

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self._font(8.5, color=_MUTED)
        self._line(f"{self.issuer.name} · {self.reference} (continued)", self.epw, height=4)
        self.ln(4)

    def footer(self) -> None:
        self._draw_stamp()
        self.set_y(-_BOTTOM_MARGIN + 6)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(1.5)
        self._font(8, color=_MUTED)
        y = self.get_y()
        self.cell(self.epw / 2, 4, to_latin1(f"{self.issuer.name} · {self.reference}"))
        self.set_xy(self.l_margin + self.epw / 2, y)
        self.cell(self.epw / 2, 4, f"Page {self.page_no()} of {{nb}}", align="R")

    def _draw_stamp(self) -> None:
        stamp = _STAMPS.get(self.invoice.status)
        if stamp is None:
            return
        label, color = stamp
        cx, cy = self.w / 2, self.h / 2
        with self.local_context(fill_opacity=0.12):
            self.set_font(_FONT, "B", 96)
            self.set_text_color(*color)
            with self.rotation(angle=35, x=cx, y=cy):
                width = self.get_string_width(label)
                self.text(cx - width / 2, cy + 12, label)

    # -- the page ----------------------------------------------------------------------------

    def draw_heading(self) -> None:
        top = self.get_y()
        left_width = self.epw * 0.58
        self._font(16, "B")
        self.multi_cell(left_width, 7, to_latin1(self.issuer.name), new_x="LMARGIN", new_y="NEXT")
        self._font(9, color=_MUTED)
        for address_line in self.issuer.address_lines:
            self._line(address_line, left_width, height=4.5)
        if self.issuer.tax_id:
            self._line(f"Tax ID: {self.issuer.tax_id}", left_width, height=4.5)
        issuer_bottom = self.get_y()

        right_x, right_width = self.l_margin + left_width, self.epw - left_width
        self.set_xy(right_x, top)
        self._font(22, "B")
        self.cell(right_width, 9, "Invoice", align="R", new_x="LEFT", new_y="NEXT")
        if self.invoice.number is not None:
            self._font(11, "B")
            self.cell(right_width, 6, to_latin1(self.invoice.number), align="R")
        else:
            self._font(11, "B", color=_DRAFT_RED)
            self.cell(right_width, 6, to_latin1("DRAFT — not a tax invoice"), align="R")
        self.set_y(max(issuer_bottom, self.get_y() + 6))
        self._rule(4)

    def draw_details(self) -> None:
        invoice = self.invoice
        top = self.get_y()
        left_width = self.epw * 0.45
        self._font(8, "B", color=_MUTED)
        self._line("BILL TO", left_width, height=4.5)
        self._font(10, "B")
        self._line(f"Organisation {invoice.organization_id}", left_width)
        self._font(9, color=_MUTED)
        self._line(f"Subscription {invoice.subscription_id}", left_width, height=4.5)
        bill_to_bottom = self.get_y()

        rows = [
            ("Invoice number", invoice.number or "not assigned (draft)"),
            (
                "Issue date",
                _utc_day(invoice.issued_at) if invoice.issued_at else "not issued (draft)",
            ),
            ("Due date", _utc_day(invoice.due_at) if invoice.due_at else "-"),
            ("Billing period", f"{_span(invoice.period_start, invoice.period_end)} (UTC)"),
            ("Currency", invoice.currency),
            ("Status", self._status_text()),
        ]
        block_x, block_width, label_width = self.l_margin + left_width, self.epw - left_width, 30.0
        value_width = block_width - label_width
        self.set_y(top)
        for label, value in rows:
            self.set_x(block_x)
            self._font(9, color=_MUTED)
            self.cell(label_width, 5, to_latin1(label))
            self._font(9, "B" if label == "Due date" else "")
            self.cell(value_width, 5, to_latin1(value), align="R", new_x="LMARGIN", new_y="NEXT")
        self.set_y(max(bill_to_bottom, self.get_y()))
        self.ln(6)

    def _status_text(self) -> str:
        invoice = self.invoice
        status = invoice.status.value.capitalize()
        if invoice.status is InvoiceStatus.PAID and invoice.paid_at is not None:
            return f"{status} {_utc_day(invoice.paid_at)}"
        return status

    def draw_lines(self) -> None:
        currency = self.invoice.currency
        self._font(9)
        headings = FontFace(
            family=_FONT, emphasis="BOLD", size_pt=8.5, color=_INK, fill_color=_HEADING_FILL
        )
        with self.table(
            width=self.epw,
            col_widths=_COLUMNS,
            text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
            v_align="TOP",
            borders_layout="HORIZONTAL_LINES",
            headings_style=headings,
            cell_fill_color=_ZEBRA,
            cell_fill_mode="EVEN_ROWS",
            line_height=4.6,
            padding=(1.6, _CELL_PADDING),
            repeat_headings=1,
        ) as table:
            heading = table.row()
            for title in (
                "Description",
                "Quantity",
                f"Unit price ({currency})",
                f"Amount ({currency})",
            ):
                heading.cell(title)
            for line in self.invoice.lines:
                row = table.row()
                for text in self._line_cells(line, self.invoice):
                    row.cell(to_latin1(text))
        self.ln(4)

    @staticmethod
    def _line_cells(line: InvoiceLine, invoice: Invoice) -> tuple[str, str, str, str]:
        """A line's own period goes under its description when it is not the invoice's (the
        next cycle's fee, a proration) and the description does not already say it."""
        description = line.description
        start, end = _utc_day(line.period_start), _utc_day(line.period_end)
        own_period = (line.period_start, line.period_end) != (
            invoice.period_start,
            invoice.period_end,
        )
        if own_period and not (start in description and end in description):
            description = f"{description}\nPeriod {start} to {end}"
        return (
            description,
            _quantity(line.quantity),
            _unit_price(line.unit_price),
            str(line.amount),
        )

    def draw_totals(self) -> None:
        totals = self.invoice.totals
        rows = [
            ("Subtotal", str(totals.subtotal)),
            (f"Tax ({_percent(totals.tax_rate)})", str(totals.tax)),
            ("Total", str(totals.total)),
            ("Credit applied", _credit(totals.credit_applied)),
        ]
        row_height, due_height = 6.0, 9.0
        if self.will_page_break(row_height * len(rows) + due_height + 4):
            self.add_page()
        x = self.l_margin + self.epw - _TOTALS_WIDTH
        label_width = _TOTALS_WIDTH * 0.55
        for label, value in rows:
            self.set_x(x)
            self._font(9.5, "B" if label == "Total" else "", color=_INK)
            self.cell(label_width, row_height, to_latin1(label))
            self.cell(_TOTALS_WIDTH - label_width, row_height, value, align="R")
            self.ln(row_height)
        self.ln(1.5)
        self.set_x(x)
        self.set_fill_color(*_HEADING_FILL)
        self._font(11, "B")
        self.cell(label_width, due_height, "Amount due", fill=True)
        self.cell(
            _TOTALS_WIDTH - label_width,
            due_height,
            f"{totals.amount_due.currency} {totals.amount_due}",
            align="R",
            fill=True,
        )
        self.ln(due_height + 6)

    def draw_notes(self) -> None:
        invoice = self.invoice
        notes = [f"All amounts are in {invoice.currency}; dates are UTC."]
        if self.is_draft:
            notes.append(
                "This is a draft: it may still change, has no number and is not a tax invoice."
            )
        elif invoice.status is InvoiceStatus.VOID:
            notes.append("This invoice has been voided and is not payable.")
        elif (
            invoice.status in OPEN_STATUSES
            and invoice.totals.amount_due.amount > 0
            and invoice.due_at is not None
        ):
            notes.append(
                f"Please pay {invoice.currency} {invoice.totals.amount_due} "
                f"by {_utc_day(invoice.due_at)}, quoting {invoice.number}."
            )
        self._font(8.5, color=_MUTED)
        for note in notes:
            self.multi_cell(self.epw, 4.5, to_latin1(note), new_x="LMARGIN", new_y="NEXT")
