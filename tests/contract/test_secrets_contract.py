"""One contract for every SecretsProvider: a stored secret reads back exactly; a missing one is NotFound.

Implementations: the in-memory fake; SSM Parameter Store (SecureString) and
Secrets Manager through Powertools on moto's server; Key Vault through the SDK
with its REST answers served by the SDK's own transport (no Key Vault emulator
exists; ``tests/support/azure_transport.py``). Unreachable or throttling stores
raise ``TransientError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pytest

from modelpilot.exceptions import NotFound, TransientError
from modelpilot.testing import InMemorySecrets
from tests.support.outbound import closed_port

VALUE = "s3cr3t: line one\nline two ✓"


@dataclass
class SecretsCase:
    """A provider, how to store a secret in its backend (returning the name to ask for), a name never stored."""

    secrets: Any
    put: Any
    missing: str


def _fake(request):
    secrets = InMemorySecrets()

    def put(name, value):
        secrets.values[name] = value
        return name

    return SecretsCase(secrets, put, "modelpilot-missing")


def _aws(request, kind):
    from modelpilot.adapters.aws.secrets import PowertoolsSecrets
    from tests.support.aws import client, moto_endpoint, unique

    endpoint = moto_endpoint(request)
    ssm, sm = client("ssm", endpoint), client("secretsmanager", endpoint)

    def put(name, value):
        if kind == "ssm":
            path = f"/modelpilot/{unique(name)}"
            ssm.put_parameter(Name=path, Value=value, Type="SecureString")
            return path
        secret = unique(name)
        sm.create_secret(Name=secret, SecretString=value)
        return secret

    missing = "/modelpilot/never-stored" if kind == "ssm" else "secretsmanager:never-stored"
    return SecretsCase(PowertoolsSecrets(ssm, sm), put, missing)


def _vault(values, *, status=None):
    """Key Vault's GET /secrets/<name> answers: the value, 404 SecretNotFound, or ``status`` for every request."""

    def handler(request):
        if status is not None:
            return status, {"error": {"code": "Throttled", "message": "too many requests"}}, {"Retry-After": "0"}
        name = urlparse(request.url).path.split("/")[2]
        if name in values:
            return 200, {"value": values[name], "id": f"https://mp-kv.vault.azure.net/secrets/{name}/1"}, {}
        return (
            404,
            {"error": {"code": "SecretNotFound", "message": f"A secret with (name/id) {name} was not found"}},
            {},
        )

    return handler


def _keyvault(request, *, status=None):
    from azure.keyvault.secrets import SecretClient

    from modelpilot.adapters.azure.keyvault import KeyVaultSecrets
    from tests.support.azure_transport import StaticCredential, canned_transport

    values: dict[str, str] = {}
    transport, _ = canned_transport(_vault(values, status=status))
    client = SecretClient("https://mp-kv.vault.azure.net", StaticCredential(), transport=transport, retry_total=0)

    def put(name, value):
        values[name] = value
        return name

    return SecretsCase(KeyVaultSecrets(client), put, "never-stored")


def _files(tmp_path):
    from modelpilot.adapters.local.secrets import FileSecrets

    folder = tmp_path / "secrets"
    folder.mkdir()

    def put(name, value):
        path = folder / name
        path.write_text(value + "\n", encoding="utf-8")  # as `echo` writes it
        path.chmod(0o600)
        return name

    return SecretsCase(FileSecrets(folder), put, "never-stored")


@pytest.fixture(params=["fake", "files", "ssm", "secretsmanager", "keyvault"])
def case(request, tmp_path):
    if request.param == "fake":
        return _fake(request)
    if request.param == "files":
        return _files(tmp_path)
    if request.param == "keyvault":
        return _keyvault(request)
    return _aws(request, request.param)


def test_a_stored_secret_reads_back_exactly(case):
    name = case.put("webhook-key", VALUE)
    assert case.secrets.get_secret(name) == VALUE
    assert case.secrets.get_secret(name) == VALUE


def test_a_missing_secret_is_not_found(case):
    with pytest.raises(NotFound):
        case.secrets.get_secret(case.missing)


def test_secrets_do_not_leak_into_each_other(case):
    first, second = case.put("a-key", "value-a"), case.put("b-key", "value-b")
    assert (case.secrets.get_secret(first), case.secrets.get_secret(second)) == ("value-a", "value-b")


@pytest.mark.parametrize("kind", ["ssm", "secretsmanager"])
def test_an_unreachable_aws_store_is_a_transient_error(kind):
    from modelpilot.adapters.aws.secrets import PowertoolsSecrets
    from tests.support.outbound import _aws_client

    nowhere = f"http://127.0.0.1:{closed_port()}"
    secrets = PowertoolsSecrets(
        _aws_client("ssm", nowhere, retries=1), _aws_client("secretsmanager", nowhere, retries=1)
    )
    with pytest.raises(TransientError):
        secrets.get_secret("/modelpilot/webhook-key" if kind == "ssm" else "webhook-key")


def test_a_throttling_vault_is_a_transient_error(request):
    case = _keyvault(request, status=429)
    with pytest.raises(TransientError):
        case.secrets.get_secret("webhook-key")


def test_a_local_secret_file_others_may_read_is_refused(tmp_path):
    from modelpilot.adapters.local.secrets import FileSecrets
    from modelpilot.exceptions import InvalidInput, NotAuthorized

    (tmp_path / "key").write_text("value")
    (tmp_path / "key").chmod(0o644)
    with pytest.raises(NotAuthorized, match="chmod 600"):
        FileSecrets(tmp_path).get_secret("key")
    with pytest.raises(InvalidInput):
        FileSecrets(tmp_path / "sub").get_secret("../key")
