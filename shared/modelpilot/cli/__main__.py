"""``python -m modelpilot.cli``: the same as the ``modelpilot`` command."""

import sys

from modelpilot.cli.app import main

sys.exit(main())
