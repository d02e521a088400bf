"""Secrets from SSM Parameter Store and Secrets Manager through the Powertools parameters utility.

Names starting with ``ssm:`` or ``/`` are SecureString parameters (decrypted);
``secretsmanager:<name>`` or any other name is a Secrets Manager secret.
Values are cached for ``max_age`` seconds per container.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from modelpilot.adapters.aws._errors import translate
from modelpilot.exceptions import NotFound, TransientError
from modelpilot.ports import SecretsProvider

__all__ = ["PowertoolsSecrets"]


class PowertoolsSecrets(SecretsProvider):
    """A :class:`SecretsProvider` on SSM / Secrets Manager.

    Parameters
    ----------
    ssm_client, secrets_client:
        boto3 clients (injected); the Powertools providers are built on first use.
    max_age:
        Seconds a value is cached.
    """

    def __init__(self, ssm_client: Any, secrets_client: Any, *, max_age: int = 300) -> None:
        self._clients = {"ssm": ssm_client, "secretsmanager": secrets_client}
        self._providers: dict[str, Any] = {}
        self.max_age = max_age

    def _provider(self, kind: str) -> Any:
        if kind not in self._providers:
            from aws_lambda_powertools.utilities import parameters

            factory = parameters.SSMProvider if kind == "ssm" else parameters.SecretsProvider
            self._providers[kind] = factory(boto3_client=self._clients[kind])
        return self._providers[kind]

    def get_secret(self, name: str) -> str:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        if name.startswith("ssm:") or name.startswith("/"):
            kind, ref, extra = "ssm", name.removeprefix("ssm:"), {"decrypt": True}
        else:
            kind, ref, extra = "secretsmanager", name.removeprefix("secretsmanager:"), {}
        try:
            value = self._provider(kind).get(ref, max_age=self.max_age, **extra)
        except GetParameterError as exc:
            cause = exc.__cause__ or exc.__context__  # Powertools raises it inside its except block, without "from"
            if isinstance(cause, ClientError | BotoCoreError) and isinstance(translate(cause, name), TransientError):
                raise translate(cause, f"reading secret {name!r}") from exc
            raise NotFound(f"secret {name!r} cannot be read from {kind}: {exc}", secret=name) from None
        if isinstance(value, bytes):
            return value.decode()
        return str(value)
