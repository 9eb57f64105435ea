"""Pure billing rules: plans, periods, proration, rating, invoices and credit; no I/O, no clock."""
