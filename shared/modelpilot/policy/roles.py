"""Who may do what: roles granted to identities, per model and environment.

An optional ``roles`` block of the policy file::

    roles:
      - role: admin
        members: ["arn:aws:iam::123456789012:role/platform"]
      - role: promoter
        members: ["arn:aws:sts::123456789012:assumed-role/deployers"]
        environments: [dev, staging]          # empty or left out = every environment
      - role: approver
        members: ["*@example.com"]
        models: [churn]                       # empty or left out = every model
        environments: [prod]

Members are identity patterns (:mod:`modelpilot.domain.identity`). Without a
``roles`` block, nobody is restricted beyond the ``operators`` list and each
environment's ``approvers``, as before roles existed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from modelpilot.domain import identity
from modelpilot.policy.base import Strict

__all__ = ["ACTIONS", "Action", "Role", "RoleGrant", "allowed"]

Role = Literal["viewer", "promoter", "approver", "admin"]
Action = Literal["view", "promote", "rollback", "approve", "reject"]

#: the roles that allow each action
ACTIONS: dict[Action, frozenset[Role]] = {
    "view": frozenset({"viewer", "promoter", "approver", "admin"}),
    "promote": frozenset({"promoter", "admin"}),
    "rollback": frozenset({"promoter", "admin"}),
    "approve": frozenset({"approver", "admin"}),
    "reject": frozenset({"approver", "admin"}),
}


class RoleGrant(Strict):
    """One role given to the identities matching ``members``, for some models and environments."""

    role: Role
    members: list[str] = Field(min_length=1, description="identity patterns, e.g. '*@example.com'")
    models: list[str] = Field(default_factory=list, description="model names; empty = every model")
    environments: list[str] = Field(default_factory=list, description="environments; empty = every environment")

    def covers(self, actor: str, model: str, environment: str | None) -> bool:
        """Return True when this grant applies to ``actor`` on ``model`` in ``environment`` (None = any)."""
        if self.models and model not in self.models:
            return False
        if environment is not None and self.environments and environment not in self.environments:
            return False
        return identity.matches_any(actor, self.members)


def allowed(grants: list[RoleGrant], actor: str, action: Action, model: str, environment: str | None) -> bool:
    """Return True when one of ``grants`` gives ``actor`` a role allowing ``action``."""
    roles = ACTIONS[action]
    return any(g.role in roles and g.covers(actor, model, environment) for g in grants)
