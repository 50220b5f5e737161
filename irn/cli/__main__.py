"""``python -m irn.cli``: the ``irn`` command."""

import sys

from irn.cli.main import main

sys.exit(main())
