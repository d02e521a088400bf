"""What the demo's steps share: the simulated clock, the timeline printer, the people and their actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelpilot.domain.model import utcnow

if TYPE_CHECKING:
    from pathlib import Path

    from modelpilot.service.messagebus import MessageBus, Outcome

__all__ = ["APPROVER", "ML_ENGINEER", "OPERATOR", "DemoContext", "SimulatedClock", "approve", "promote", "register"]

ML_ENGINEER = "alice@example.com"
APPROVER = "bob@example.com"
OPERATOR = "carol@example.com"


class SimulatedClock:
    """The demo's clock: starts at the real time, moves only when the story says so."""

    def __init__(self) -> None:
        self.start = utcnow().replace(microsecond=0)
        self.now = self.start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move forward by ``timedelta(**delta)``."""
        self.now += timedelta(**delta)


@dataclass
class DemoContext:
    """State shared by the demo's steps."""

    home: Path
    bus: MessageBus
    clock: SimulatedClock
    as_json: bool = False
    timeline: list[dict[str, Any]] = field(default_factory=list)
    packages: dict[int, Path] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str, **details: Any) -> None:
        """Add a line to the printed timeline."""
        offset = self.clock.now - self.clock.start
        minutes = int(offset.total_seconds() // 60)
        days, minutes = divmod(minutes, 1440)
        stamp = f"day {days + 1} {minutes // 60:02d}:{minutes % 60:02d}"
        self.timeline.append({"at": self.clock.now.isoformat(), "offset": stamp, "event": text, **details})
        if not self.as_json:
            print(f"[{stamp}] {text}", flush=True)

    def detail(self, text: str) -> None:
        """Print an indented detail line under the last timeline entry."""
        if not self.as_json:
            for line in text.splitlines():
                print(f"         {line}", flush=True)

    def outcome(self, outcome: Outcome) -> Outcome:
        """Report a handler outcome on the timeline."""
        self.say(outcome.message, status=outcome.status)
        if outcome.status == "blocked":
            for gate in outcome.data["gate_report"]["gates"]:
                if gate["status"] == "failed":
                    self.detail(f"FAIL {gate['gate']}: {gate['reason']}")
        return outcome


def register(ctx: DemoContext, version: int) -> None:
    from modelpilot.domain.commands import RegisterModel

    outcome = ctx.bus.handle(
        RegisterModel(
            package_uri=str(ctx.packages[version]),
            actor=ML_ENGINEER,
            auto_promote=True,
            trigger=f"demo-upload-{version}",
        )
    )
    m = ctx.data["metrics"][version]
    ctx.say(f"{ML_ENGINEER} uploads churn v{outcome.data['version']} (auc={m['auc']}, accuracy={m['accuracy']})")
    promo = outcome.data.get("promotion", {})
    if promo:
        ctx.say(promo["message"], status=promo["status"])


def promote(ctx: DemoContext, version: int, env: str) -> Outcome:
    from modelpilot.domain.commands import PromoteModel

    return ctx.outcome(
        ctx.bus.handle(
            PromoteModel(model="churn", environment=env, actor=ML_ENGINEER, version=version, reason="release train")
        )
    )


def approve(ctx: DemoContext, version: int, env: str) -> None:
    from modelpilot.domain.commands import ApproveModel

    ctx.outcome(
        ctx.bus.handle(
            ApproveModel(
                model="churn",
                version=version,
                environment=env,
                approver=APPROVER,
                comment="reviewed metrics and lineage",
            )
        )
    )
