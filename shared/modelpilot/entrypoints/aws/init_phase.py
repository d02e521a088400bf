"""Lambda's init phase: what every handler module builds while Lambda imports it.

Lambda imports the handler module once per execution environment, before the first event
and with a CPU boost; what is built then is not paid by the first invocation. Each handler
module of ``functions/aws`` calls :func:`init_phase` with the commands it dispatches, which
builds the Powertools logger and metrics and, through ``modelpilot.bootstrap.prepare``, the
bus with its clients, the command handlers and the policy. Outside Lambda (tests, the CLI,
a benchmark importing a module) it does nothing.
"""

from __future__ import annotations

from modelpilot.bootstrap import prepare
from modelpilot.config import in_function_runtime

__all__ = ["init_phase"]


def init_phase(
    *commands: str, modules: tuple[str, ...] = (), alarm_tags: bool = False, metrics_sources: bool = False
) -> None:
    """Build now what the first invocation of a function dispatching ``commands`` would otherwise build."""
    if not in_function_runtime():
        return
    from modelpilot.entrypoints.aws.runtime import logger, metrics

    logger()
    metrics()
    prepare(commands, modules=modules, alarm_tags=alarm_tags, metrics_sources=metrics_sources)
