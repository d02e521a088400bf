"""Who the AWS credentials belong to: ``sts:GetCallerIdentity``, canonicalised.

The call needs no IAM permission and cannot be denied by a policy, so every
credential can answer it.
"""

from __future__ import annotations

from typing import Any

from modelpilot.domain.identity import aws_principal
from modelpilot.exceptions import NotAuthorized

__all__ = ["caller_principal"]


def caller_principal(sts: Any) -> str:
    """Return the canonical principal of the credentials behind the boto3 ``sts`` client."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        arn = sts.get_caller_identity()["Arn"]
    except (BotoCoreError, ClientError, KeyError) as exc:
        raise NotAuthorized(f"cannot tell who the AWS credentials belong to (sts get-caller-identity): {exc}") from None
    return aws_principal(str(arn))
