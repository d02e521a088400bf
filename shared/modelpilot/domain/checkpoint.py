"""Signed audit checkpoints: every model's chain head at one moment, sealed with HMAC-SHA256.

A checkpoint anchors the audit outside the registry store: whoever can rewrite
the store can recompute a chain (and its head) from an altered record onwards,
but cannot produce a checkpoint that signs the new hashes without the key, which
lives in the platform's secret store (Secrets Manager / Key Vault; a key file in
the home locally). ``key_id`` names the key (a digest of it, never the key) so a
rotated key can be told apart from a forged signature.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelpilot.domain.audit import AuditHead
from modelpilot.domain.model import canonical_json

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_SECRET", "Checkpoint", "key_id", "sign_checkpoint"]

CHECKPOINT_FORMAT = "modelpilot-audit-checkpoint/1"
#: the secret (Secrets Manager / Key Vault name; a key file in the home locally) that signs checkpoints
CHECKPOINT_SECRET = "modelpilot-audit-checkpoint-key"  # noqa: S105 - the secret's name, not a secret


def key_id(key: bytes) -> str:
    """Return a short public name of ``key`` (a sha256 prefix of a derived value, not the key)."""
    return hashlib.sha256(b"modelpilot-audit-key-id:" + key).hexdigest()[:16]


@dataclass(frozen=True)
class Checkpoint:
    """Every model's chain head at ``created_at``, with the HMAC that seals them."""

    created_at: datetime
    heads: dict[str, AuditHead]
    key_id: str
    signature: str = ""
    fmt: str = field(default=CHECKPOINT_FORMAT)

    def body(self) -> dict[str, Any]:
        """Return the signed content: every field except ``signature``."""
        return {
            "format": self.fmt,
            "created_at": self.created_at.isoformat(),
            "key_id": self.key_id,
            "heads": {m: {"seq": h.seq, "hash": h.hash} for m, h in sorted(self.heads.items())},
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document that is stored."""
        return {**self.body(), "signature": self.signature}

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        """Rebuild a checkpoint from :meth:`to_dict`; raise ``ValueError`` naming what is wrong."""
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a {CHECKPOINT_FORMAT} document")
        try:
            heads = {str(model): AuditHead(int(h["seq"]), str(h["hash"])) for model, h in dict(data["heads"]).items()}
            return cls(
                created_at=datetime.fromisoformat(str(data["created_at"])),
                heads=heads,
                key_id=str(data["key_id"]),
                signature=str(data["signature"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed checkpoint: {exc}") from None

    def mac(self, key: bytes) -> str:
        """Return the HMAC-SHA256 of :meth:`body` under ``key``."""
        return hmac.new(key, canonical_json(self.body()), hashlib.sha256).hexdigest()

    def signed_by(self, key: bytes) -> bool:
        """Return True when ``signature`` is this content's HMAC under ``key`` (constant-time compare)."""
        return self.key_id == key_id(key) and hmac.compare_digest(self.signature, self.mac(key))


def sign_checkpoint(heads: dict[str, AuditHead], created_at: datetime, key: bytes) -> Checkpoint:
    """Return a checkpoint of ``heads`` signed with ``key``."""
    unsigned = Checkpoint(created_at=created_at, heads=dict(heads), key_id=key_id(key))
    return Checkpoint(created_at=created_at, heads=unsigned.heads, key_id=unsigned.key_id, signature=unsigned.mac(key))
