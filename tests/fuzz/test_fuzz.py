"""The fuzzers in CI: every parser and entrypoint translator on a small hypothesis profile.

``benchmarks/fuzz.py`` runs the same targets with 10,000 cases each. What this proves: for the
cases drawn, the only outcomes were a value or a typed ``ModelPilotError``, and accepted input
kept the invariants of ``tests/fuzz/targets.py``. What it cannot prove: that no input escapes.
Set ``MODELPILOT_FUZZ_EXAMPLES`` to draw more cases per target.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz.targets import all_targets

EXAMPLES = int(os.environ.get("MODELPILOT_FUZZ_EXAMPLES", "100"))
TARGETS = {t.name: t for t in all_targets()}


@pytest.mark.parametrize("name", list(TARGETS))
def test_only_values_or_typed_errors(name):
    target = TARGETS[name]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy)
    def fuzz(value):
        target.run(value)

    fuzz()
