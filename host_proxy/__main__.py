"""``python -m host_proxy``: see ``host_proxy/cli.py`` (``--help`` explains routes and the allowlist)."""

import sys

from .cli import main

sys.exit(main())
