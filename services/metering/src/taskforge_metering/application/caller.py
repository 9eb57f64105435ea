"""Who is calling, as far as the use cases care: which organisations the caller may touch."""

from __future__ import annotations

from dataclasses import dataclass

from taskforge_common.errors import PermissionDenied


@dataclass(frozen=True, slots=True)
class Caller:
    """`organization_id` None: the caller may act for any organisation (operators, services)."""

    subject: str
    organization_id: str | None = None

    def may_access(self, organization_id: str) -> bool:
        return self.organization_id is None or self.organization_id == organization_id

    def ensure_access(self, organization_id: str) -> None:
        # Same answer whether or not the organisation exists: nothing leaks across tenants.
        if not self.may_access(organization_id):
            raise PermissionDenied("this token is bound to a different organization")
