"""Who is calling, as far as use cases care: which organisations the caller may touch and
whether it is an operator. Built from the verified token at the transport edge."""

from __future__ import annotations

from dataclasses import dataclass

from taskforge_common.errors import PermissionDenied, Reason


@dataclass(frozen=True, slots=True)
class Caller:
    """`organization_id` None: the caller may act for any organisation (operators, services).
    `is_admin`: the token has billing:admin (back-dating, custom tiers, immediate cancels)."""

    subject: str
    organization_id: str | None = None
    is_admin: bool = False

    def may_access(self, organization_id: str) -> bool:
        return self.organization_id is None or self.organization_id == organization_id

    def ensure_access(self, organization_id: str) -> None:
        # Same answer whether or not the organisation exists: nothing leaks across tenants.
        if not self.may_access(organization_id):
            raise PermissionDenied("this token is bound to a different organization")

    def ensure_unbound(self, what: str) -> None:
        """Work that spans organisations (billing runs, the price book) needs a token bound to
        none: an organisation-bound token never acts beyond its organisation (SPEC §10), even
        with billing:admin."""
        if self.organization_id is not None:
            raise PermissionDenied(
                f"{what} acts across organizations: a token bound to one cannot",
                reason=Reason.ORGANIZATION_FORBIDDEN,
            )

    def ensure_admin(self, what: str) -> None:
        if not self.is_admin:
            raise PermissionDenied(
                f"{what} needs the billing:admin scope", reason=Reason.SCOPE_MISSING
            )
