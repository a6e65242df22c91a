"""``python -m relayer``: run the relayer (see relayer/serve.py); ``python -m relayer check``: print the
effective configuration and check it against the network (relayer/check.py); ``python -m relayer api-table``:
README's API table from an OpenAPI document (relayer/api_table.py)."""

import sys
from collections.abc import Callable

from relayer.api_table import main as api_table_main
from relayer.check import main as check_main
from relayer.serve import main

COMMANDS: dict[str, Callable[[list[str] | None], int]] = {"check": check_main, "api-table": api_table_main}

command = COMMANDS.get(sys.argv[1]) if sys.argv[1:] else None
sys.exit(command(sys.argv[2:]) if command is not None else main())
