"""ModelPilot: take ML models from upload to production and keep them healthy there.

Importing this package is cheap on purpose (cold starts): submodules are
imported where they are used.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
