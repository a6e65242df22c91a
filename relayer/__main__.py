"""``python -m relayer``: run the relayer (see relayer/serve.py)."""

import sys

from relayer.serve import main

sys.exit(main())
