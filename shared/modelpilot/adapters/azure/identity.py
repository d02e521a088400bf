"""Who the Azure credential belongs to: the ``oid`` claim of a token it issues.

The token is the caller's own, fresh from its credential; its claims are read, not
verified (nothing is granted on them that the credential itself could not do).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING

from modelpilot.exceptions import NotAuthorized

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = ["STORAGE_KEY_ACTOR", "token_principal"]

#: the principal of a caller holding only a storage connection string (a shared key)
STORAGE_KEY_ACTOR = "anonymous:storage-key"
_SCOPE = "https://storage.azure.com/.default"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def token_principal(credential: TokenCredential) -> str:
    """Return ``entra:<oid>`` of the principal ``credential`` signs in as; raise ``NotAuthorized`` when unknown."""
    from azure.core.exceptions import AzureError

    try:
        token = credential.get_token(_SCOPE).token
    except AzureError as exc:
        raise NotAuthorized(f"cannot tell who the Azure credential belongs to: {exc}") from None
    return f"entra:{oid_of(token)}"


def oid_of(token: str) -> str:
    """Return the ``oid`` claim of a JWT access token (lower case); raise ``NotAuthorized`` without one."""
    parts = token.split(".")
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (IndexError, binascii.Error, ValueError, UnicodeDecodeError):
        raise NotAuthorized("the Azure credential's token is not a JWT: cannot tell who it belongs to") from None
    oid = claims.get("oid") if isinstance(claims, dict) else None
    if not isinstance(oid, str) or not _GUID.match(oid.strip().lower()):
        raise NotAuthorized("the Azure credential's token has no object id (oid claim)")
    return oid.strip().lower()
