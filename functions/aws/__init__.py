"""AWS Lambda handlers, one module per trigger (``Handler: <module>.handler`` in template.yaml)."""
