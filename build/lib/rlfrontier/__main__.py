"""`python -m rlfrontier ...`: the command line without the console script (Ray jobs use this)."""

import sys

from rlfrontier.cli import main

sys.exit(main())
