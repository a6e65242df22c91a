"""Which embedding model a relayer runs, as /config and /api/embed report it (no model code here).

Clients that compute vectors for the manual routes (``/api/remember/manual``, ``/api/recall/manual``) must
use the same model, or their vectors and the stored ones are not comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

from relayer.validation import EMBEDDING_DIMENSIONS

EMBEDDING_PROVIDERS = ("openai", "local")
LOCAL_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
LOCAL_MODEL_DIMENSIONS = 384
MOCK_MODEL_ID = "memwal-mock-sha256"  # upstream's deterministic stand-in when no OPENAI_API_KEY is set


@dataclass(frozen=True)
class ModelDescription:
    provider: str  # local | openai | mock
    model: str
    dimensions: int  # the model's own; shorter vectors are zero-padded to stored_dimensions
    stored_dimensions: int = EMBEDDING_DIMENSIONS

    def as_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "model": self.model,
            "dimensions": self.dimensions,
            "storedDimensions": self.stored_dimensions,
            "padding": "zeros" if self.dimensions < self.stored_dimensions else "none",
        }


LOCAL_MODEL = ModelDescription("local", LOCAL_MODEL_ID, LOCAL_MODEL_DIMENSIONS)
MOCK_MODEL = ModelDescription("mock", MOCK_MODEL_ID, EMBEDDING_DIMENSIONS)
