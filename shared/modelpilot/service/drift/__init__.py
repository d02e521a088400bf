"""Drift in the service layer: the handlers, the batch over capture windows and the report / profile store."""
