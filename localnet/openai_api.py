"""STAND-IN, NOT A LANGUAGE MODEL: a deterministic OpenAI-compatible HTTP server for offline localnets and tests.

Nothing here understands language. It speaks OpenAI's wire format (``/v1/embeddings``, ``/v1/chat/completions``,
``/v1/models``, bearer-key auth, OpenAI's error envelope) so the relayer's real OpenAI client code runs unchanged,
and it answers with rules that are stable across runs:

* Embeddings: feature hashing of lowercased word tokens and of character trigrams (signed hashing, BLAKE2b),
  L2-normalised, 1536 dimensions. Texts that share words or spellings end up close; nothing else is meant by
  "similar". ``dimensions`` truncates and renormalises (like text-embedding-3); ``encoding_format`` may be
  ``float`` or ``base64`` (little-endian float32, what the official ``openai`` package asks for by default).
* Chat, MemWal fact extraction (system prompt with the ``BUCKET<TAB>fact`` marker, or asking to "extract"):
  one ``standard<TAB><sentence>`` line per sentence of the user text that has at least three words and is not
  already among the ``<related_memories>``, at most 20; ``NONE`` when nothing is left.
* Chat, MemWal ask (system prompt containing "Known facts about this user"): quotes the ``<memory>`` texts.
* Any other chat request: echoes the first words of the last user message (enough for summarise-for-embedding).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import time
from collections.abc import Callable

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FULL_DIMENSIONS = 1536
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_BATCH_INPUTS = 2048
MAX_TOKENS_PER_INPUT = 8192
MAX_FACTS = 20
MIN_FACT_WORDS = 3
TRIGRAM_WEIGHT = 0.5
EMBEDDING_MODELS = ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002")
CHAT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")
_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_EXTRACTION_MARKER = re.compile(r"BUCKET(\t|<TAB>|\\t)fact|\bextract", re.IGNORECASE)
_ASK_MARKER = "Known facts about this user"
_MEMORY = re.compile(r"<memory\b[^>]*>(.*?)</memory>", re.DOTALL)
_RELATED = re.compile(r"<related_memories>(.*?)</related_memories>", re.DOTALL)
_CONTEXT_TAG = re.compile(r"<context\b[^>]*/>")
_NUMBERING = re.compile(r"^\s*\d+[.):]\s*")


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _features(text: str) -> list[tuple[str, float]]:
    words = tokens(text)
    features = [("w:" + word, 1.0) for word in words]
    for word in words:
        padded = f" {word} "
        features.extend(("c:" + padded[i:i + 3], TRIGRAM_WEIGHT) for i in range(len(padded) - 2))
    return features or [("raw:" + text, 1.0)]  # punctuation-only text still gets a non-zero vector


def embed(text: str | list[int], dimensions: int = FULL_DIMENSIONS) -> np.ndarray:
    """Deterministic unit vector (float32) for ``text``; token-id lists hash each id as a feature."""
    features = _features(text) if isinstance(text, str) else [(f"t:{token}", 1.0) for token in text]
    vector = np.zeros(FULL_DIMENSIONS, dtype=np.float64)
    for feature, weight in features:
        digest = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
        vector[(digest >> 1) % FULL_DIMENSIONS] += weight if digest & 1 else -weight
    vector = vector[:dimensions]
    norm = float(np.linalg.norm(vector))
    if norm == 0:  # every feature of a short text may fall outside the kept dimensions
        vector[0] = 1.0
        norm = 1.0
    return (vector / norm).astype(np.float32)


def _sentences(text: str) -> list[str]:
    return [" ".join(part.split()) for part in _SENTENCE_END.split(text) if part.strip()]


def extraction_answer(user_text: str) -> str:
    """``standard<TAB>fact`` lines for the sentences of ``user_text`` not already in its related memories."""
    related = {" ".join(tokens(_NUMBERING.sub("", html.unescape(item))))
               for block in _RELATED.findall(user_text) for item in block.split("\n")}
    text = _CONTEXT_TAG.sub(" ", _RELATED.sub(" ", user_text))
    facts: list[str] = []
    for sentence in _sentences(html.unescape(text)):
        if len(tokens(sentence)) >= MIN_FACT_WORDS and " ".join(tokens(sentence)) not in related:
            facts.append("standard\t" + sentence)
    return "\n".join(facts[:MAX_FACTS]) if facts else "NONE"


def ask_answer(prompt_text: str, question: str) -> str:
    memories = [html.unescape(" ".join(item.split())) for item in _MEMORY.findall(prompt_text)]
    if not memories:
        return f"I don't have any memories about you yet, so I can't answer: {question}"
    return "Based on what I know about you: " + " ".join(f"[{n}] {text}" for n, text in enumerate(memories, 1))


def _message_text(message: object) -> tuple[str, str]:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise ValueError("each message needs a role")
    content = message.get("content")
    if isinstance(content, list):  # content parts: [{"type": "text", "text": …}, …]
        content = "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    if content is not None and not isinstance(content, str):
        raise ValueError("message content must be a string or a list of text parts")
    return message["role"], content or ""


def chat_answer(messages: list[object], max_words: int) -> str:
    pairs = [_message_text(message) for message in messages]
    system = "\n".join(text for role, text in pairs if role in ("system", "developer"))
    user_texts = [text for role, text in pairs if role == "user"]
    last_user = user_texts[-1] if user_texts else ""
    if _ASK_MARKER in system or "No memories found for this user yet." in system:
        return ask_answer(system, last_user)
    if _EXTRACTION_MARKER.search(system):
        return extraction_answer("\n".join(user_texts))
    words = last_user.split()
    return " ".join(words[:max_words]) if words else "(empty message)"


def openai_error(status: int, message: str, error_type: str, code: str | None, param: str | None = None) -> Response:
    return JSONResponse({"error": {"message": message, "type": error_type, "param": param, "code": code}},
                        status_code=status)


def _invalid(message: str, param: str | None = None) -> Response:
    return openai_error(400, message, "invalid_request_error", None, param)


def _model_name(requested: object, allowed: tuple[str, ...]) -> str | None:
    """The model id as sent, if it names one of ``allowed`` (an ``openai/`` router prefix is accepted)."""
    if isinstance(requested, str) and requested.removeprefix("openai/") in allowed:
        return requested
    return None


async def _json_body(request: Request, cap: int) -> dict[str, object]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise HTTPException(413, "request body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise HTTPException(413, "request body too large")
    try:
        data = json.loads(body)
    except ValueError:
        raise HTTPException(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "The request body must be a JSON object.")
    return data


def build_openai_app(api_key: str, *, clock: Callable[[], float] = time.time,
                     max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    """The stand-in server. ``api_key`` is the only accepted bearer key; ``clock`` stamps ``created``."""
    expected = ("Bearer " + api_key).encode("utf-8")

    def authorized(request: Request) -> bool:
        return hmac.compare_digest(request.headers.get("authorization", "").encode("utf-8"), expected)

    def unauthorized() -> Response:
        # Unlike OpenAI we do not echo a masked key: secrets never appear in responses or logs.
        return openai_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")

    async def embeddings(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        data = await _json_body(request, max_body_bytes)
        model = _model_name(data.get("model"), EMBEDDING_MODELS)
        if model is None:
            return openai_error(404, f"The model `{data.get('model')}` does not exist or you do not have access "
                                     "to it.", "invalid_request_error", "model_not_found")
        inputs = data.get("input")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and all(type(i) is int for i in inputs)):
            inputs = [inputs]
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_BATCH_INPUTS:
            return _invalid(f"input must be a string or a list of 1 to {MAX_BATCH_INPUTS} items", "input")
        for item in inputs:
            valid_text = isinstance(item, str) and item != ""
            valid_tokens = isinstance(item, list) and item and all(type(i) is int for i in item)
            if not (valid_text or valid_tokens):
                return _invalid("'$.input' is invalid: items must be non-empty strings or token lists", "input")
            if len(tokens(item) if isinstance(item, str) else item) > MAX_TOKENS_PER_INPUT:
                return _invalid(f"an input exceeds the maximum of {MAX_TOKENS_PER_INPUT} tokens", "input")
        dimensions = data.get("dimensions", FULL_DIMENSIONS)
        if type(dimensions) is not int or not 1 <= dimensions <= FULL_DIMENSIONS:
            return _invalid(f"dimensions must be an integer in [1, {FULL_DIMENSIONS}]", "dimensions")
        encoding = data.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return _invalid("encoding_format must be 'float' or 'base64'", "encoding_format")
        items, token_count = [], 0
        for index, item in enumerate(inputs):
            vector = embed(item, dimensions)
            token_count += len(tokens(item)) if isinstance(item, str) else len(item)
            value = (base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii") if encoding == "base64"
                     else vector.tolist())
            items.append({"object": "embedding", "index": index, "embedding": value})
        return JSONResponse({"object": "list", "data": items, "model": model,
                             "usage": {"prompt_tokens": token_count, "total_tokens": token_count}})

    async def chat_completions(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        data = await _json_body(request, max_body_bytes)
        model = _model_name(data.get("model"), CHAT_MODELS)
        if model is None:
            return openai_error(404, f"The model `{data.get('model')}` does not exist or you do not have access "
                                     "to it.", "invalid_request_error", "model_not_found")
        if data.get("stream"):
            return _invalid("streaming is not supported by the localnet stand-in", "stream")
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            return _invalid("messages must be a non-empty list", "messages")
        max_words = data.get("max_completion_tokens", data.get("max_tokens", 512))
        if type(max_words) is not int or max_words < 1:
            return _invalid("max_tokens must be a positive integer", "max_tokens")
        try:
            answer = chat_answer(messages, max_words)
        except ValueError as error:
            return _invalid(str(error), "messages")
        prompt_tokens = sum(len(tokens(_message_text(message)[1])) for message in messages)
        completion_tokens = len(tokens(answer))
        identifier = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:24]
        return JSONResponse({
            "id": "chatcmpl-" + identifier, "object": "chat.completion", "created": int(clock()),
            "model": model, "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}})

    async def models(request: Request) -> Response:
        if not authorized(request):
            return unauthorized()
        names = [*EMBEDDING_MODELS, *CHAT_MODELS]
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "localnet"} for name in names]})

    async def http_error(request: Request, error: Exception) -> Response:
        if not isinstance(error, HTTPException):  # registered for HTTPException only
            raise error
        kind = "invalid_request_error" if error.status_code < 500 else "server_error"
        return openai_error(error.status_code, str(error.detail), kind, None)

    return Starlette(routes=[Route("/v1/embeddings", embeddings, methods=["POST"]),
                             Route("/v1/chat/completions", chat_completions, methods=["POST"]),
                             Route("/v1/models", models, methods=["GET"])],
                     exception_handlers={HTTPException: http_error})
