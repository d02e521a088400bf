"""SLOs in the service layer: evaluation against the metrics sources, the check and alarm handlers,
the monitor status they store, and the rollback policy reacting to burn, drift and alarms."""
