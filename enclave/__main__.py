"""``python -m enclave``: boot the enclave runtime (see enclave/runtime.py)."""

import sys

from enclave.command import main

sys.exit(main())
