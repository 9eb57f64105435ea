"""entitlement instants within the bounds of SPEC §11

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Before the bounds were checked at the door, an entitlements push could store an instant that
later reads cannot turn into a datetime (PostgreSQL's -infinity/infinity for 0001-01-01 and
9999-12-31T23:59:59.999999999), breaking every call of that organisation for good. Such values
carry no meaning: they are cleared (the subscriptions service pushes its view again on the next
change), and a CHECK constraint keeps any value outside [2000-01-01, 2100-01-01) out for good.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT_COLUMNS = (
    "period_anchor",
    "current_period_start",
    "current_period_end",
    "usage_closed_before",
)


def _bounds() -> tuple[str, str]:
    """The bounds as literals the dialect compares correctly with its stored instants: SQLite
    keeps naive UTC text ("2000-01-01 00:00:00"), which sorts like the instants it holds."""
    if op.get_bind().dialect.name == "postgresql":
        return "'2000-01-01 00:00:00+00'::timestamptz", "'2100-01-01 00:00:00+00'::timestamptz"
    return "'2000-01-01'", "'2100-01-01'"


def upgrade() -> None:
    earliest, limit = _bounds()
    for column in INSTANT_COLUMNS:
        op.execute(
            f"UPDATE entitlements SET {column} = NULL "
            f"WHERE {column} < {earliest} OR {column} >= {limit}"
        )
    with op.batch_alter_table("entitlements") as table:
        for column in INSTANT_COLUMNS:
            table.create_check_constraint(
                f"{column}_in_range",
                f"{column} IS NULL OR ({column} >= {earliest} AND {column} < {limit})",
            )


def downgrade() -> None:
    with op.batch_alter_table("entitlements") as table:
        for column in INSTANT_COLUMNS:
            table.drop_constraint(f"ck_entitlements_{column}_in_range", type_="check")
