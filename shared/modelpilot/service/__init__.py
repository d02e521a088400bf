"""The service layer: the message bus, the command handlers and queries.

* :mod:`.messagebus` — ``Services``, ``Outcome`` and the bus that runs one handler per command;
* :mod:`.dispatch` — running a translated trigger once per business key, with one error policy;
* :mod:`.lifecycle` — register, promote, approve, reject, roll back, monitor status;
* :mod:`.drift` — reference profiles and drift batches; :mod:`.slo` — SLO checks, alarms and
  the rollback policy that reacts to them;
* :mod:`.queries` — read models for status, history and audit verification.
"""
