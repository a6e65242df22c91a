"""The OpenAI-compatible stand-in, driven through the official ``openai`` package over loopback."""

import base64

import httpx
import numpy as np
import openai
import pytest

from localnet.openai_api import FULL_DIMENSIONS, build_openai_app, chat_answer, embed, extraction_answer
from localnet.runner import serving

KEY = "sk-localnet-test-key"
EXTRACTION_PROMPT = "Extract durable facts. Answer NONE or lines of the form BUCKET<TAB>fact, BUCKET in vital, standard."


@pytest.fixture
async def server():
    async with serving(build_openai_app(KEY, clock=lambda: 1_700_000_000.5), name="openai") as url:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        async with client:
            yield url, client


def cosine(left, right):
    return float(np.dot(left, right) / (np.linalg.norm(left) * np.linalg.norm(right)))


class TestEmbed:
    def test_unit_length_and_deterministic(self):
        vector = embed("I love green tea")
        assert vector.shape == (FULL_DIMENSIONS,) and vector.dtype == np.float32
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
        assert np.array_equal(vector, embed("I love green tea"))

    def test_lexical_neighbours_are_closer(self):
        query = embed("what tea do I like")
        assert cosine(query, embed("I like green tea")) > cosine(query, embed("my car is a red bicycle"))

    def test_case_insensitive(self):
        assert np.array_equal(embed("Green TEA"), embed("green tea"))

    def test_truncation_renormalises(self):
        short = embed("hello world", 8)
        assert short.shape == (8,) and abs(float(np.linalg.norm(short)) - 1.0) < 1e-5

    def test_punctuation_only_is_not_zero(self):
        assert float(np.linalg.norm(embed("?!"))) > 0.99


class TestEmbeddingsEndpoint:
    async def test_default_base64_through_the_sdk(self, server):
        _, client = server
        response = await client.embeddings.create(model="openai/text-embedding-3-small", input="I love green tea")
        vector = np.asarray(response.data[0].embedding, dtype=np.float32)
        assert len(vector) == FULL_DIMENSIONS
        assert np.allclose(vector, embed("I love green tea"))
        assert response.model == "openai/text-embedding-3-small" and response.usage.prompt_tokens == 4

    async def test_float_batch_and_dimensions(self, server):
        _, client = server
        response = await client.embeddings.create(model="text-embedding-3-small", input=["a b", "c d", "e f"],
                                                  encoding_format="float", dimensions=256)
        assert [item.index for item in response.data] == [0, 1, 2]
        assert all(len(item.embedding) == 256 for item in response.data)
        assert np.allclose(response.data[1].embedding, embed("c d", 256))

    async def test_raw_base64_is_little_endian_float32(self, server):
        url, _ = server
        async with httpx.AsyncClient() as http:
            response = await http.post(url + "/v1/embeddings", headers={"Authorization": f"Bearer {KEY}"},
                                       json={"model": "text-embedding-3-small", "input": "x y",
                                             "encoding_format": "base64"})
        raw = base64.b64decode(response.json()["data"][0]["embedding"])
        assert np.array_equal(np.frombuffer(raw, dtype="<f4"), embed("x y"))

    async def test_similarity_ordering_through_the_sdk(self, server):
        _, client = server
        texts = ["what tea do I like", "I like green tea", "the bicycle is red"]
        data = (await client.embeddings.create(model="text-embedding-3-small", input=texts)).data
        query, near, far = (np.asarray(item.embedding) for item in data)
        assert cosine(query, near) > cosine(query, far)

    @pytest.mark.parametrize(("body", "message"), [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": ["ok", 5]}, "input"),
        ({"input": "ok", "dimensions": 0}, "dimensions"),
        ({"input": "ok", "dimensions": 1537}, "dimensions"),
        ({"input": "ok", "encoding_format": "hex"}, "encoding_format"),
    ])
    async def test_bad_requests(self, server, body, message):
        _, client = server
        with pytest.raises(openai.BadRequestError, match=message):
            await client.embeddings.create(model="text-embedding-3-small", **body)

    async def test_unknown_model(self, server):
        _, client = server
        with pytest.raises(openai.NotFoundError, match="does not exist"):
            await client.embeddings.create(model="gpt-4o-mini", input="x")

    async def test_wrong_key_is_401(self, server):
        url, _ = server
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-wrong", max_retries=0)
        async with client:
            with pytest.raises(openai.AuthenticationError, match="Incorrect API key") as caught:
                await client.embeddings.create(model="text-embedding-3-small", input="x")
        assert caught.value.code == "invalid_api_key"
        assert "sk-wrong" not in str(caught.value.body)

    async def test_missing_key_is_401_in_openai_shape(self, server):
        url, _ = server
        async with httpx.AsyncClient() as http:
            response = await http.post(url + "/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
        assert response.status_code == 401
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}

    async def test_oversized_body_is_413(self):
        async with serving(build_openai_app(KEY, max_body_bytes=1024), name="small-openai") as url:
            async with httpx.AsyncClient() as http:
                response = await http.post(url + "/v1/embeddings", headers={"Authorization": f"Bearer {KEY}"},
                                           json={"model": "text-embedding-3-small", "input": "x" * 2000})
        assert response.status_code == 413 and "too large" in response.json()["error"]["message"]


class TestExtraction:
    def test_one_line_per_sentence(self):
        answer = extraction_answer("I live in Lisbon. My favourite tea is sencha!\nI work as a nurse")
        assert answer.split("\n") == ["standard\tI live in Lisbon.", "standard\tMy favourite tea is sencha!",
                                      "standard\tI work as a nurse"]

    @pytest.mark.parametrize("text", ["", "   ", "hi", "ok thanks. yes!"])
    def test_trivial_is_none(self, text):
        assert extraction_answer(text) == "NONE"

    def test_skips_known_memories_and_context_tags(self):
        text = ("<related_memories>\n1. I live in Lisbon.\n</related_memories>\n"
                '<context occurred_at="2026-01-01"/>\nI live in Lisbon. I have two cats.')
        assert extraction_answer(text) == "standard\tI have two cats."

    def test_caps_at_twenty_facts(self):
        text = " ".join(f"Fact number {n} is here." for n in range(30))
        assert len(extraction_answer(text).split("\n")) == 20

    def test_marker_with_a_real_tab(self):
        messages = [{"role": "system", "content": "Reply with lines BUCKET\tfact."},
                    {"role": "user", "content": "My dog is called Rex."}]
        assert chat_answer(messages, 512) == "standard\tMy dog is called Rex."


class TestChatEndpoint:
    async def test_extraction_through_the_sdk(self, server):
        _, client = server
        completion = await client.chat.completions.create(
            model="openai/gpt-4o-mini", temperature=0.1, max_tokens=512,
            messages=[{"role": "system", "content": EXTRACTION_PROMPT},
                      {"role": "user", "content": "I am allergic to peanuts. I prefer window seats."}])
        assert completion.choices[0].message.content == (
            "standard\tI am allergic to peanuts.\nstandard\tI prefer window seats.")
        assert completion.choices[0].finish_reason == "stop"
        assert completion.created == 1_700_000_000
        assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens

    async def test_ask_quotes_memories(self, server):
        _, client = server
        system = ('Known facts about this user:\n<memory id="b1" relevance="0.91">Likes sencha &amp; matcha</memory>'
                  '\n<memory id="b2" relevance="0.50">Lives in Lisbon</memory>')
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "system", "content": system},
                                           {"role": "user", "content": "What do I drink?"}])
        answer = completion.choices[0].message.content
        assert "[1] Likes sencha & matcha" in answer and "[2] Lives in Lisbon" in answer

    async def test_ask_without_memories(self, server):
        _, client = server
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "system", "content": "No memories found for this user yet."},
                                           {"role": "user", "content": "Who am I?"}])
        assert "don't have any memories" in completion.choices[0].message.content

    async def test_other_prompts_echo_a_bounded_prefix(self, server):
        _, client = server
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", max_tokens=3,
            messages=[{"role": "system", "content": "Summarise."},
                      {"role": "user", "content": [{"type": "text", "text": "one two three four five"}]}])
        assert completion.choices[0].message.content == "one two three"

    async def test_deterministic(self, server):
        _, client = server
        messages = [{"role": "system", "content": EXTRACTION_PROMPT}, {"role": "user", "content": "I like jazz music."}]
        first = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        second = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        assert first.id == second.id and first.choices[0].message.content == second.choices[0].message.content

    @pytest.mark.parametrize(("extra", "match"), [
        ({"messages": []}, "messages"), ({"stream": True}, "streaming"),
        ({"messages": [{"content": "no role"}]}, "role"), ({"max_tokens": 0}, "max_tokens"),
    ])
    async def test_bad_requests(self, server, extra, match):
        url, _ = server
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **extra}
        async with httpx.AsyncClient() as http:
            response = await http.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"},
                                       json=body)
        assert response.status_code == 400
        assert match in response.json()["error"]["message"]

    async def test_wrong_key_is_401(self, server):
        url, _ = server
        async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=KEY + "x", max_retries=0) as client:
            with pytest.raises(openai.AuthenticationError):
                await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])


class TestModels:
    async def test_lists_models(self, server):
        _, client = server
        names = [model.id async for model in client.models.list()]
        assert "text-embedding-3-small" in names and "gpt-4o-mini" in names
