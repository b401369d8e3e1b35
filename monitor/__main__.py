"""``python -m monitor`` runs the command line, like the ``monitor`` script."""

import sys

from monitor.cli import main

sys.exit(main())
