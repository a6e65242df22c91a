"""What an MCP caller may do: the scopes of owner tokens and OAuth grants (a delegate-key signature has all)."""

from __future__ import annotations

from relayer.owner_access import PERMISSION_MEMORIES_READ

SCOPE_READ = PERMISSION_MEMORIES_READ  # recall, ask, list_namespaces (owner tokens carry this one)
SCOPE_WRITE = "memories.write"  # remember, analyze, forget
ALL_SCOPES = (SCOPE_READ, SCOPE_WRITE)
