"""Translators at the edge: raw cloud payloads (validated with pydantic) → commands.

One module per source (``aws_*``, ``azure_*``); a payload that does not have its
documented shape raises ``InvalidEvent`` and nothing is changed.
"""
