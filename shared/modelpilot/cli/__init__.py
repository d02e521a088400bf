"""The ``modelpilot`` command: operators drive the same handlers the functions run.

* :mod:`.app` — the parser, ``main()`` and the registry commands (register, promote, approve, rollback, audit …);
* :mod:`.drift` — ``modelpilot drift …``; :mod:`.slo` — ``modelpilot slo …`` and ``telemetry ingest``;
* :mod:`._common` — exit codes, tables and JSON output, settings, the bus and the acting identity.
"""

from __future__ import annotations

from modelpilot.cli.app import main

__all__ = ["main"]
