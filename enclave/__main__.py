"""``python -m enclave``: run the relayer (see enclave/serve.py)."""

import sys

from enclave.serve import main

sys.exit(main())
