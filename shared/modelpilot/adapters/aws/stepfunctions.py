"""The drift fan-out's starter on Step Functions: one execution of the drift state machine per window.

The execution's name is the window's (``modelpilot.service.drift.window.execution_name``), so a
retried tick cannot start a window twice: Step Functions refuses a second execution of that name
(``ExecutionAlreadyExists``; for a standard workflow still running with the same input it returns the
running one instead), and either way the window runs once.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from modelpilot.adapters.aws._errors import error_code, translate
from modelpilot.ports import FanOutStarter

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["StepFunctionsFanOutStarter"]


class StepFunctionsFanOutStarter(FanOutStarter):
    """Starts executions of ``state_machine_arn``; its client is built on first use by ``factory``."""

    def __init__(self, state_machine_arn: str, factory: Callable[[], Any], *, min_bytes: int) -> None:
        self.state_machine_arn = state_machine_arn
        self.min_bytes = min_bytes
        self._factory = factory
        self._client: Any = None

    def start(self, name: str, execution_input: dict[str, Any]) -> bool:
        if self._client is None:
            self._client = self._factory()
        what = f"Step Functions StartExecution {name} of {self.state_machine_arn}"
        try:
            self._client.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(execution_input, sort_keys=True)
            )
        except ClientError as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return False
            raise translate(exc, what) from exc
        except BotoCoreError as exc:
            raise translate(exc, what) from exc
        return True
