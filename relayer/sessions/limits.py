"""Read-side caps of the session API (the frame format's own caps live in frames.py)."""

MAX_WINDOW_TURNS = 100  # turns one read returns: one sidecar batch (sidecar/protocol.py MAX_OPEN_BATCH)
DEFAULT_WINDOW_TURNS = 20
