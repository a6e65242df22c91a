"""The one place ``openai`` exceptions become relayer errors (embeddings and the LLM share it).

Rate limits, connection failures, timeouts and 5xx are transient (503, as upstream); anything else — a
rejected key, a bad request, an unknown model — will not heal by retrying (502). Detail is logged, not sent.
"""

from __future__ import annotations

import openai

from relayer.errors import UpstreamFailed, UpstreamUnavailable

_TRANSIENT = (openai.RateLimitError, openai.APIConnectionError, openai.APITimeoutError)


def model_error(exc: openai.OpenAIError, what: str) -> UpstreamUnavailable | UpstreamFailed:
    detail = f"{what} failed: {type(exc).__name__}"
    if isinstance(exc, _TRANSIENT) or (isinstance(exc, openai.APIStatusError) and exc.status_code >= 500):
        return UpstreamUnavailable(detail)
    return UpstreamFailed(detail)
