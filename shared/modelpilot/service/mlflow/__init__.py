"""MLflow's model registry, both ways: versions and aliases coming in (webhooks), aliases and tags going out.

``imports.py`` registers an MLflow model version as a ModelPilot version; ``sync.py`` turns an alias or a tag
into a promotion request or an approval, and writes ModelPilot's decisions back to MLflow.
"""

from __future__ import annotations

from modelpilot.service.mlflow._common import ACTOR

__all__ = ["ACTOR"]
