"""Write-back to SageMaker Model Registry: a model package's ``ModelLifeCycle`` with ``UpdateModelPackage``.

One call per update::

    UpdateModelPackage(ModelPackageArn=…,
                       ModelLifeCycle={"Stage": …, "StageStatus": …, "StageDescription": …},
                       ModelApprovalStatus=…)        # only when the update names one

The update is validated before it is sent (:class:`~modelpilot.ports.LifecycleUpdate`), and botocore
validates the request against the SageMaker service model again before anything leaves the process.
Writing the same update twice leaves the package as the first write did. A package that does not exist
raises :class:`~modelpilot.exceptions.NotFound`; throttling, ``ConflictException`` (a concurrent update of
the package), 5xx and connection failures raise :class:`~modelpilot.exceptions.TransientError`; other
refusals (access denied) are permanent errors naming the AWS error code.

The role needs ``sagemaker:UpdateModelPackage`` on the model package ARNs (template.yaml); it may be
narrowed with the condition keys ``sagemaker:ModelLifeCycle:stage`` / ``sagemaker:ModelLifeCycle:stageStatus``.
boto3 is imported only when a client has to be built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.adapters.aws._lazy import LazyClient
from modelpilot.exceptions import InvalidInput, NotFound, TransientError
from modelpilot.ports import LifecycleSync

if TYPE_CHECKING:
    from modelpilot.ports import LifecycleUpdate

__all__ = ["SageMakerLifecycleSync"]

#: error codes that mean "try again": another update of the same package is in flight
_BUSY = frozenset({"ConflictException"})


class SageMakerLifecycleSync(LazyClient, LifecycleSync):
    """Writes ``ModelLifeCycle`` (and ``ModelApprovalStatus``) of SageMaker model packages.

    Parameters
    ----------
    client:
        A boto3 SageMaker client.
    factory:
        Builds the client on first use when ``client`` is None (functions that never write back
        never build it).
    """

    @staticmethod
    def request(update: LifecycleUpdate) -> dict[str, Any]:
        """Return the ``UpdateModelPackage`` parameters of ``update``."""
        params: dict[str, Any] = {
            "ModelPackageArn": update.external_id,
            "ModelLifeCycle": {
                "Stage": update.stage,
                "StageStatus": update.stage_status,
                "StageDescription": update.description,
            },
        }
        if update.approval_status is not None:
            params["ModelApprovalStatus"] = update.approval_status
        return params

    def write(self, update: LifecycleUpdate) -> None:
        from botocore.exceptions import ClientError, ParamValidationError

        from modelpilot.adapters.aws._errors import error_code, translate

        what = f"UpdateModelPackage {update.external_id}"
        try:
            self.client.update_model_package(**self.request(update))
        except ClientError as exc:
            code = error_code(exc)
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if code == "ResourceNotFound" or (
                code in {"ValidationException", "ValidationError"}
                and ("not found" in message.lower() or "does not exist" in message.lower())
            ):
                raise NotFound(
                    f"SageMaker has no model package {update.external_id}", external_id=update.external_id
                ) from None
            if code in _BUSY:
                raise TransientError(f"{what}: the package is being updated ({code})", aws_error=code) from None
            raise translate(exc, what) from None
        except ParamValidationError as exc:  # a BotoCoreError, but never cured by a retry
            raise InvalidInput(f"{what}: SageMaker would refuse the request: {exc}", field="update") from None
        except Exception as exc:
            raise translate(exc, what) from None
