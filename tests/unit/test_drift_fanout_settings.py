"""The drift fan-out's settings and the drift batch's choice between inline and fan-out, on the fakes."""

from __future__ import annotations

import pytest

from modelpilot.config import ENV, Settings
from modelpilot.service.drift.fanout import WindowPlan
from modelpilot.service.drift.window import execution_name
from modelpilot.testing import FakeFanOutStarter


def test_the_state_machine_and_threshold_come_from_the_environment():
    settings = Settings.from_env({ENV.DRIFT_STATE_MACHINE: "arn:sm", ENV.DRIFT_FANOUT_BYTES: "1000"})
    assert settings.drift_state_machine == "arn:sm" and settings.drift_fanout_bytes == 1000
    unset = Settings.from_env({})
    assert unset.drift_state_machine is None and unset.drift_fanout_bytes == 2 * 1024**3


@pytest.mark.parametrize("text", ["0", "-5", "lots", "1.5"])
def test_a_threshold_that_is_not_a_positive_whole_number_keeps_the_default(text):
    assert Settings.from_env({ENV.DRIFT_FANOUT_BYTES: text}).drift_fanout_bytes == 2 * 1024**3


def _plan(model: str, report_id: str) -> WindowPlan:
    return WindowPlan(model, "prod", 1, report_id, "s", "e", None, "mem://ref", ())


def test_the_execution_name_is_the_windows_and_fits_step_functions():
    name = execution_name(_plan("churn.v2/big model" * 5, "r1"))
    assert len(name) <= 80 and all(c.isalnum() or c in "-_" for c in name)
    assert name == execution_name(_plan("churn.v2/big model" * 5, "r1"))  # a retried tick names the same one
    assert name != execution_name(_plan("churn.v2/big model" * 5, "r2"))  # another window, another execution


def test_the_fake_starter_starts_a_name_once():
    starter = FakeFanOutStarter(min_bytes=10)
    assert starter.start("a", {"x": 1}) is True
    assert starter.start("a", {"x": 1}) is False
    assert list(starter.started) == ["a"]
