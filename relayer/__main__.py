"""``python -m relayer``: run the relayer (see relayer/serve.py); ``python -m relayer check``: print the
effective configuration and check it against the network (relayer/check.py)."""

import sys

from relayer.check import main as check_main
from relayer.serve import main

sys.exit(check_main(sys.argv[2:]) if sys.argv[1:2] == ["check"] else main())
