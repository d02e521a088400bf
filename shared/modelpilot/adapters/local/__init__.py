"""The local backend: SQLite registry, a folder artifact store, an in-process event log."""
