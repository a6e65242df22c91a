"""Errors of ``manifest``: one class, because every failure means the same thing to the caller.

    ManifestError   the document cannot describe a deployment; the message names the key and the rule

Both sides refuse to start on it: the host proxy before it listens, the enclave runtime before it
commits anything to PCR16.
"""

from __future__ import annotations


class ManifestError(ValueError):
    """The manifest (or the enclave document derived from it) is malformed, too large or inconsistent."""
