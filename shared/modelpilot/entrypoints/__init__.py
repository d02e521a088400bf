"""Translators at the edge: raw cloud payloads (validated with pydantic) → commands.

One sub-package per cloud (:mod:`.aws`, :mod:`.azure`), one module per source; a payload that
does not have its documented shape raises ``InvalidEvent`` and nothing is changed.
"""
