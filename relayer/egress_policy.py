"""EGRESS_POLICY: where memory text may go once it is inside the relayer.

    open      upstream's behaviour: the embedding provider and the LLM (OPENAI_API_BASE) receive it
    private   nothing that carries memory text leaves: embeddings run in-process (EMBEDDING_PROVIDER=local,
              enforced by settings), and the LLM (analyze, ask, summaries of long texts) is used only when
              OPENAI_API_BASE reaches a destination allowlisted for plaintext; otherwise those routes
              answer 403 with :meth:`PlaintextPolicy.llm_refusal`'s explanation

In the enclave both the policy and the allowlist are committed to PCR16: EGRESS_POLICY is a ``[relayer]``
variable, and the runtime derives EGRESS_PLAINTEXT_DESTINATIONS from the ``[[egress]]`` routes marked
``allow_plaintext = true`` (manifest/model.py). What else crosses the boundary carries no memory text:
Seal ciphertext to Walrus and PostgreSQL, key requests to Seal servers, public chain reads. (Vectors do go
to PostgreSQL: README "Privacy" says what they reveal.)
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from memwal_common.environment import SettingsError

EGRESS_POLICIES = ("open", "private")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_DESTINATIONS = 64


def destination_of(url: str) -> str:
    """``host:port`` an http(s) URL dials (lowercase host, the scheme's port when none is given); "" if none."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return ""
    if not parts.hostname or port is None:
        return ""
    host = parts.hostname.lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_destinations(text: str) -> tuple[str, ...]:
    """EGRESS_PLAINTEXT_DESTINATIONS: comma-separated ``host:port``, hosts lowercased."""
    items = tuple(sorted({item.strip().lower() for item in text.split(",") if item.strip()}))
    if len(items) > MAX_DESTINATIONS:
        raise SettingsError(f"EGRESS_PLAINTEXT_DESTINATIONS lists more than {MAX_DESTINATIONS} destinations")
    for item in items:
        host, separator, port = item.rpartition(":")
        if not host or not separator or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"EGRESS_PLAINTEXT_DESTINATIONS: {item!r} is not host:port")
    return items


@dataclass(frozen=True)
class PlaintextPolicy:
    policy: str  # one of EGRESS_POLICIES
    llm_url: str  # OPENAI_API_BASE
    allowed: frozenset[str]  # host:port that may receive memory text under "private"

    @property
    def private(self) -> bool:
        return self.policy == "private"

    @property
    def llm_allowed(self) -> bool:
        return not self.private or destination_of(self.llm_url) in self.allowed

    def llm_refusal(self, feature: str) -> str | None:
        """Why ``feature`` may not call the LLM under this policy, in words for the client; None if it may."""
        if self.llm_allowed:
            return None
        return (
            f"{feature} is not available on this relayer: its egress policy is private (EGRESS_POLICY=private, "
            "attested), so memory text never leaves the enclave, and no LLM endpoint is allowlisted to receive it. "
            "The operator can allowlist one with allow_plaintext = true on its [[egress]] route."
        )
