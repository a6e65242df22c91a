"""``python3.11 -m enclave.runtime`` (what the image's /init runs): the enclave runtime, see enclave/tee/."""

import sys

from enclave.tee.command import main

if __name__ == "__main__":
    sys.exit(main())
