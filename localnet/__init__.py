"""Offline stand-ins for everything the MemWal relayer talks to, as real HTTP servers on loopback.

Start them with ``python -m localnet --state DIR`` (or ``localnet.runner.run_localnet`` from tests), then
create accounts with ``python -m localnet.cli create-account --state DIR``. Nothing in production imports
this package.
"""
