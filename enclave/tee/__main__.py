"""``python -m enclave.tee``: boot the enclave runtime (see enclave/tee/runtime.py)."""

import sys

from enclave.tee.command import main

sys.exit(main())
