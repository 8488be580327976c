"""python -m checks PATH... — the same as `mirador check`."""

import sys

from checks.cli import main

sys.exit(main())
