"""Documents rendered from the domain: invoices as PDF (SPEC §4)."""

from taskforge_subscriptions.rendering.invoice_pdf import (
    DEFAULT_ISSUER,
    Issuer,
    invoice_pdf_filename,
    render_invoice_pdf,
)

__all__ = ["DEFAULT_ISSUER", "Issuer", "invoice_pdf_filename", "render_invoice_pdf"]
