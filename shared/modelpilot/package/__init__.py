"""Model packages: the ``modelpilot.json`` manifest (schema, loading, digests) and the package builder."""
