"""``python -m attestation``: see ``attestation/_cli.py``."""

import sys

from ._cli import main

sys.exit(main())
