"""Who the CLI's cloud credentials belong to, and who the CLI then says acted (no network: stand-in credentials)."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest

from modelpilot.adapters.azure.identity import STORAGE_KEY_ACTOR, oid_of, token_principal
from modelpilot.adapters.azure.wiring import caller_identity
from modelpilot.config import Settings
from modelpilot.domain.identity import acting_for
from modelpilot.exceptions import NotAuthorized

OID = "6B1E0000-0000-4000-8000-0000000000C1"


def jwt(claims: object) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.signature"


class Credential:
    """A TokenCredential that hands out one token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(token=self.token, expires_on=0)


def test_the_azure_principal_is_the_tokens_object_id():
    token = jwt({"oid": OID, "name": "system:ops", "upn": "carol@contoso.com"})
    assert token_principal(Credential(token)) == f"entra:{OID.lower()}"
    settings = Settings.from_env({"MODELPILOT_BACKEND": "azure"})
    assert caller_identity(settings, credential=Credential(token)) == f"entra:{OID.lower()}"


@pytest.mark.parametrize("token", ["not-a-jwt", jwt({"upn": "carol@contoso.com"}), jwt({"oid": "system:ops"}), jwt([])])
def test_a_token_without_an_object_id_is_refused(token):
    with pytest.raises(NotAuthorized):
        oid_of(token)


def test_a_storage_connection_string_is_a_shared_key_not_a_person():
    settings = Settings.from_env({"MODELPILOT_BACKEND": "azure", "MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING": "X"})
    assert caller_identity(settings) == STORAGE_KEY_ACTOR


@pytest.mark.parametrize(
    ("principal", "claim", "delegates", "expected"),
    [
        (None, "alice", [], "alice"),  # local: --actor stands
        ("entra:1", None, [], "entra:1"),  # cloud: the credentials say
        ("entra:1", "alice", [], "claimed:alice"),  # a name on top is only claimed
        ("entra:1", "github:Carol", ["entra:1"], "github:carol"),  # a delegate vouches for the person
        ("entra:2", "github:carol", ["entra:1"], "claimed:github:carol"),  # not a delegate
        ("entra:1", "entra:2", ["entra:1"], "claimed:entra:2"),  # nor may a delegate borrow a principal
        ("entra:1", "github:a@b@c", ["entra:1"], "claimed:github:a@b@c"),  # malformed names are claims
    ],
)
def test_acting_for(principal, claim, delegates, expected):
    assert acting_for(principal, claim, delegates) == expected


@pytest.mark.parametrize("principal", [None, "entra:1"])
def test_no_caller_may_act_as_modelpilot_itself(principal):
    with pytest.raises(ValueError, match="system:"):
        acting_for(principal, "SYSTEM:ops", ["entra:1"])
