"""Rendering of generated rule and alarm documents."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["dump_yaml"]


def dump_yaml(data: dict[str, Any]) -> str:
    """Return ``data`` as block YAML (what the CLI writes)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=120)
