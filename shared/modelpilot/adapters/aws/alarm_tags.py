"""The tags of a CloudWatch alarm, read with ``ListTagsForResource``.

The alarm function maps an alarm whose name does not follow
``modelpilot/<model>/<environment>/…`` to a model by its tags
(``modelpilot:model``, ``modelpilot:environment``). This adapter only reads
them; what they mean is decided by :mod:`modelpilot.entrypoints.aws.alarm`.

Only alarms of the client's own region are looked up: the alarm function may
read tags of this account and region's alarms and nothing else, so an alarm of
another region (a shared SNS topic can carry one) has no readable tags. An
alarm deleted before its tags are read has none either. Throttling, 5xx and
connection failures raise :class:`~modelpilot.exceptions.TransientError`, so
the invocation is retried; other refusals (access denied, an ARN CloudWatch
rejects) are permanent errors.

boto3 is imported only when a client has to be built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelpilot.ports import AlarmTags
from modelpilot.telemetry import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ALARM_ARN", "AlarmArn", "CloudWatchAlarmTags", "parse_alarm_arn"]

#: ``arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>`` (names may contain ``:`` and ``/``)
ALARM_ARN = re.compile(
    r"^arn:(?P<partition>[\w-]+):cloudwatch:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):alarm:(?P<name>.+)$"
)
#: error codes that mean "this alarm is gone": it has no tags to read
_GONE = frozenset({"ResourceNotFoundException", "ResourceNotFound"})

_log = get_logger(__name__)


@dataclass(frozen=True)
class AlarmArn:
    """The parts of a CloudWatch alarm ARN."""

    partition: str
    region: str
    account: str
    name: str


def parse_alarm_arn(arn: str) -> AlarmArn | None:
    """Return the parts of a CloudWatch alarm ARN, or None when ``arn`` is not one."""
    found = ALARM_ARN.match(arn)
    if found is None:
        return None
    return AlarmArn(found["partition"], found["region"], found["account"], found["name"])


class CloudWatchAlarmTags(AlarmTags):
    """Reads the tags of CloudWatch alarms of one region.

    Parameters
    ----------
    client:
        A boto3 CloudWatch client.
    factory:
        Builds the client on first use when ``client`` is None (keeps cold starts
        of functions that never read tags free of it).
    """

    def __init__(self, client: Any = None, *, factory: Callable[[], Any] | None = None) -> None:
        if client is None and factory is None:
            raise ValueError("CloudWatchAlarmTags needs a client or a factory that builds one")
        self._client = client
        self._factory = factory
        #: number of ListTagsForResource calls made (for tests and benchmarks)
        self.calls = 0

    @property
    def client(self) -> Any:
        """The boto3 CloudWatch client, built on first use."""
        if self._client is None and self._factory is not None:
            self._client = self._factory()
        return self._client

    def __call__(self, arn: str) -> dict[str, str]:
        """Return the tags of the alarm ``arn`` (empty when it has none that this function can read).

        Raises
        ------
        TransientError
            CloudWatch throttled the call, failed (5xx) or could not be reached.
        ModelPilotError
            CloudWatch refused the call for good (for example ``AccessDenied``).
        """
        parts = parse_alarm_arn(arn)
        if parts is None:
            _log.warning("alarm ARN %r is not a CloudWatch alarm ARN: no tags to read", arn)
            return {}
        region = str(self.client.meta.region_name or "")
        if parts.region != region:
            _log.warning(
                "alarm %s is in region %s; tags are read for alarms of %s only", parts.name, parts.region, region
            )
            return {}
        return self._list(arn)

    def _list(self, arn: str) -> dict[str, str]:
        from botocore.exceptions import BotoCoreError, ClientError
        from botocore.parsers import ResponseParserError

        from modelpilot.adapters.aws._errors import error_code, translate

        try:
            reply = self.client.list_tags_for_resource(ResourceARN=arn)
        except ClientError as exc:
            if error_code(exc) in _GONE:
                _log.info("alarm %s no longer exists: no tags to read", arn)
                return {}
            raise translate(exc, f"CloudWatch ListTagsForResource of {arn}") from None
        except (BotoCoreError, ResponseParserError) as exc:
            raise translate(exc, f"CloudWatch ListTagsForResource of {arn}") from None
        finally:
            self.calls += 1
        return {str(t["Key"]): str(t.get("Value", "")) for t in reply.get("Tags", [])}
