"""Who acts: canonical identities, their comparison and the patterns that select them.

Every backend hands the service layer an actor string. Two strings name the same
principal when their canonical forms are equal: surrounding spaces are dropped and
the text is case-folded (``ALICE@example.com`` is ``alice@example.com``). A
*well-formed* identity has no whitespace or control characters, at most one ``@``
and at most :data:`MAX_LENGTH` characters; an identity that is not well-formed
never counts as an approval and never matches a pattern.

Patterns (``approvers``, ``operators``, role members) are globs over the whole
canonical identity: ``*`` is any run of characters other than ``@``, ``/`` and
``:``, ``?`` is one such character, and ``**`` is any run of characters at all.
So ``*@example.com`` matches ``alice@example.com`` but neither
``mallory@evil.com@example.com`` (two ``@``: not well-formed) nor
``arn:aws:iam::1:role/x@example.com``.

Kinds of actor, by prefix:

* ``system:`` — ModelPilot's own functions (upload triggers, timers, alarms); set
  only by the edges for events they receive, never taken from a caller.
* ``claimed:`` — a name the caller gave without proof (the CLI's ``--actor`` on a
  cloud backend); recorded as given, never an approval.
* ``anonymous:`` — a caller that proved only a shared secret (an Azure function key);
  never an approval.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "ANONYMOUS_PREFIX",
    "CLAIMED_PREFIX",
    "MAX_LENGTH",
    "SYSTEM_PREFIX",
    "acting_for",
    "aws_principal",
    "can_approve",
    "canonical",
    "is_system",
    "is_well_formed",
    "matches",
    "matches_any",
    "same",
]

SYSTEM_PREFIX = "system:"
CLAIMED_PREFIX = "claimed:"
ANONYMOUS_PREFIX = "anonymous:"
_UNPROVEN = (CLAIMED_PREFIX, ANONYMOUS_PREFIX)
#: what key holders and console callers were recorded as before they were marked anonymous
_LEGACY_UNPROVEN = frozenset({"function-key", "console"})
#: longer identities are not well-formed (an ARN is at most 2048 characters; a role ARN far less)
MAX_LENGTH = 512


#: an STS assumed-role ARN: ``arn:<partition>:sts::<account>:assumed-role/<role>/<session>``
_ASSUMED_ROLE = re.compile(r"^(arn:[a-z0-9-]+:sts::\d{12}:assumed-role/[^/]+)/[^/]*$")


def canonical(identity: str) -> str:
    """Return the canonical form of ``identity``: NFC, stripped, case-folded, session name dropped.

    An assumed-role ARN names the role, not the session: the session name is chosen by
    whoever assumes the role, so ``…:assumed-role/Approvers/alice-1`` and
    ``…/alice-2`` are one principal, ``…:assumed-role/approvers``.
    """
    text = unicodedata.normalize("NFC", identity).strip().casefold()
    role = _ASSUMED_ROLE.match(text)
    return role.group(1) if role else text


def aws_principal(arn: str, source_identity: str | None = None) -> str:
    """Return the canonical principal of an AWS caller ARN.

    IAM users (and every other ARN) keep their ARN; an assumed role is the role
    without its session name, unless the session carries an ``aws:SourceIdentity``
    (set once when the first role is assumed and kept through role chaining), which
    then names the person: ``aws:<account>:source-identity/<value>``.
    """
    text = canonical(arn)
    if source_identity and source_identity.strip() and _ASSUMED_ROLE.match(text + "/x"):
        account = text.split(":")[4]
        return f"aws:{account}:source-identity/{canonical(source_identity)}"
    return text


def same(a: str, b: str) -> bool:
    """Return True when ``a`` and ``b`` name the same principal."""
    return canonical(a) == canonical(b)


def is_well_formed(identity: str) -> bool:
    """Return True for a non-empty identity with no whitespace or control characters and at most one ``@``."""
    text = canonical(identity)
    if not text or len(text) > MAX_LENGTH or text.count("@") > 1:
        return False
    return not any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in text)


def is_system(identity: str) -> bool:
    """Return True for ModelPilot's own automation (``system:…``)."""
    return canonical(identity).startswith(SYSTEM_PREFIX)


def can_approve(identity: str) -> bool:
    """Return True when ``identity`` may count as an approval: well-formed, proven, and a person or role."""
    text = canonical(identity)
    return is_well_formed(text) and not text.startswith((*_UNPROVEN, SYSTEM_PREFIX)) and text not in _LEGACY_UNPROVEN


#: prefixes a delegated name may not use: they are kinds of principal ModelPilot derives itself
_RESERVED = ("system", "claimed", "anonymous", "arn", "aws", "entra", "cognito", "user")


def acting_for(principal: str | None, claim: str | None, delegates: Iterable[str] = ()) -> str:
    r"""Return the actor of a CLI call from the credentials' ``principal`` and the name the caller ``claim``\ s.

    * local (no principal): the claim as given (never ``system:…``);
    * no claim: the principal;
    * a principal matching ``delegates`` (a release pipeline's role) acts for the
      ``provider:name`` it names (``github:carol``), which then counts as that person;
    * anyone else's claim is recorded as ``claimed:<name>``, which can never approve.
    """
    if claim is not None and is_system(claim):
        raise ValueError(f"{claim!r} names ModelPilot's own functions (system:…); no caller may act as them")
    if principal is None:
        if not claim or not claim.strip():
            raise ValueError("no actor: give --actor NAME")
        return claim.strip()
    if not claim or not claim.strip():
        return principal
    name = canonical(claim)
    provider, sep, rest = name.partition(":")
    delegable = sep and rest and provider not in _RESERVED and is_well_formed(name)
    if delegable and matches_any(principal, delegates):
        return name
    return CLAIMED_PREFIX + name


#: characters a single ``*`` or ``?`` does not match
_SEPARATORS = frozenset("@/:")


def _tokens(pattern: str) -> list[str]:
    """Split a glob into tokens: ``**``, ``*``, ``?`` or one literal character."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        step = 2 if pattern.startswith("**", i) else 1
        tokens.append(pattern[i : i + step])
        i += step
    return tokens


def _closure(states: set[int], tokens: list[str]) -> set[int]:
    """Add the states reachable by letting stars match nothing."""
    todo = list(states)
    while todo:
        i = todo.pop()
        if i < len(tokens) and tokens[i] in ("*", "**") and i + 1 not in states:
            states.add(i + 1)
            todo.append(i + 1)
    return states


def _glob_match(text: str, pattern: str) -> bool:
    """Match ``text`` against ``pattern`` in O(len(text) * len(pattern)): no backtracking, whatever the pattern."""
    tokens = _tokens(pattern)
    states = _closure({0}, tokens)
    for ch in text:
        moved: set[int] = set()
        for i in states:
            if i == len(tokens):
                continue
            part = tokens[i]
            if part == "**" or (part == "*" and ch not in _SEPARATORS):
                moved.add(i)
            elif (part == "?" and ch not in _SEPARATORS) or part == ch:
                moved.add(i + 1)
        states = _closure(moved, tokens)
        if not states:
            return False
    return len(tokens) in states


def matches(identity: str, pattern: str) -> bool:
    """Return True when the whole canonical ``identity`` matches the canonical glob ``pattern``."""
    if not is_well_formed(identity):
        return False
    return _glob_match(canonical(identity), canonical(pattern))


def matches_any(identity: str, patterns: Iterable[str]) -> bool:
    """Return True when ``identity`` matches one of ``patterns``."""
    return any(matches(identity, p) for p in patterns)
