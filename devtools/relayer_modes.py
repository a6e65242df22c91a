"""Which embeddings and egress policy `make run` and `make run-plain` give the relayer (README "Privacy").

    local    all-MiniLM-L6-v2 inside the relayer (the default): recall in the demo is semantic and no memory
             text goes to the OpenAI-compatible stand-in for embeddings
    openai   the localnet's OpenAI-compatible stand-in (hash-based vectors): the path a hosted provider takes
"""

from __future__ import annotations

from relayer.embedding_models import LOCAL_MODEL_ID

EMBEDDINGS = ("local", "openai")
EGRESS_POLICIES = ("private", "open")


def relayer_mode_environment(*, embeddings: str, egress_policy: str = "open") -> dict[str, str]:
    """The relayer variables for the choice (on top of localnet's configuration, which names the stand-in's model)."""
    if embeddings not in EMBEDDINGS or egress_policy not in EGRESS_POLICIES:
        raise ValueError(f"embeddings must be one of {EMBEDDINGS} and the egress policy one of {EGRESS_POLICIES}")
    environment = {"EMBEDDING_PROVIDER": "local", "EMBEDDING_MODEL": LOCAL_MODEL_ID} if embeddings == "local" else {}
    if egress_policy == "private":
        environment["EGRESS_POLICY"] = "private"
    return environment
