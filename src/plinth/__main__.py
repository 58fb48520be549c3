"""``python -m plinth`` is the ``plinth`` command."""

import sys

from plinth.cli.main import main

sys.exit(main())
