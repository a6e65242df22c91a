"""Errors raised by the ``chain`` package.

    ChainError
    ├── ChainUnavailable      transport failure, timeout, HTTP 429/5xx: worth retrying
    │   └── ReadLagTimeout    the read side did not catch up with a transaction in time
    ├── ChainProtocolError    the node answered, but not in the shape we expect
    ├── ObjectNotFound        the object a caller needs (gas coin, key server) does not exist
    ├── TransactionRejected   the node refused or aborted a transaction
    └── InvalidSignature      a Sui signature did not verify

    MalformedTransaction (a ValueError)  transaction bytes that do not decode under Sui's caps
"""


class ChainError(Exception):
    """Base class for every error of the chain package."""


class ChainUnavailable(ChainError):
    """The node could not be reached or answered with a transient status."""


class ReadLagTimeout(ChainUnavailable):
    """A read that depends on a transaction gave up waiting for the read side to index it."""


class ChainProtocolError(ChainError):
    """The node's answer did not have the expected shape."""


class ObjectNotFound(ChainError):
    """An object that must exist (a key server, a gas coin, an input object) was not found."""


class TransactionRejected(ChainError):
    """A transaction was refused by the node or aborted during execution."""


class InvalidSignature(ChainError):
    """A Sui signature is malformed or does not verify."""


class MalformedTransaction(ValueError):
    """The bytes are not a transaction (or programmable transaction) that ``chain`` can decode."""
