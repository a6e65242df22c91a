"""relayer.bert_encoder on a small random BERT, against an independent float64 reference written the way
transformers' BertModel computes a padded batch (attention mask, exact erf GELU via math.erf), then
sentence-transformers' mean pooling and normalisation. The real model is checked against published
values in test_local_embeddings.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayer.bert_encoder import BertEncoder, BertShape, _gelu

SHAPE = BertShape(hidden_size=16, layers=2, heads=4, intermediate_size=32, max_positions=24)
VOCABULARY = 50


def random_weights(shape: BertShape = SHAPE, seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    hidden, inner = shape.hidden_size, shape.intermediate_size

    def tensor(*dimensions: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(dimensions) * scale).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": tensor(VOCABULARY, hidden),
        "embeddings.position_embeddings.weight": tensor(shape.max_positions, hidden),
        "embeddings.token_type_embeddings.weight": tensor(2, hidden),
        "embeddings.LayerNorm.weight": 1 + tensor(hidden, scale=0.1),
        "embeddings.LayerNorm.bias": tensor(hidden, scale=0.1),
    }
    for index in range(shape.layers):
        prefix = f"encoder.layer.{index}."
        for name in ("query", "key", "value"):
            weights[f"{prefix}attention.self.{name}.weight"] = tensor(hidden, hidden)
            weights[f"{prefix}attention.self.{name}.bias"] = tensor(hidden, scale=0.1)
        weights[prefix + "attention.output.dense.weight"] = tensor(hidden, hidden)
        weights[prefix + "attention.output.dense.bias"] = tensor(hidden, scale=0.1)
        weights[prefix + "attention.output.LayerNorm.weight"] = 1 + tensor(hidden, scale=0.1)
        weights[prefix + "attention.output.LayerNorm.bias"] = tensor(hidden, scale=0.1)
        weights[prefix + "intermediate.dense.weight"] = tensor(inner, hidden)
        weights[prefix + "intermediate.dense.bias"] = tensor(inner, scale=0.1)
        weights[prefix + "output.dense.weight"] = tensor(hidden, inner)
        weights[prefix + "output.dense.bias"] = tensor(hidden, scale=0.1)
        weights[prefix + "output.LayerNorm.weight"] = 1 + tensor(hidden, scale=0.1)
        weights[prefix + "output.LayerNorm.bias"] = tensor(hidden, scale=0.1)
    return weights


def reference(weights: dict[str, np.ndarray], sequences: list[list[int]], shape: BertShape = SHAPE) -> np.ndarray:
    """float64, padded to the longest sequence with an additive mask, as BertModel + Pooling + Normalize."""
    w = {name: value.astype(np.float64) for name, value in weights.items()}
    batch, length = len(sequences), max(map(len, sequences))
    ids = np.zeros((batch, length), dtype=np.int64)
    mask = np.zeros((batch, length))
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1

    def norm(x, prefix):
        mean = x.mean(-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(variance + shape.layer_norm_eps) * w[prefix + ".weight"] + w[prefix + ".bias"]

    def linear(x, prefix):
        return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]

    erf = np.vectorize(math.erf)
    heads, size = shape.heads, shape.hidden_size // shape.heads
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
    x = norm(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    additive = (1 - mask)[:, None, None, :] * np.finfo(np.float64).min
    for index in range(shape.layers):
        p = f"encoder.layer.{index}."

        def split(t):
            return t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

        q, k, v = (split(linear(x, f"{p}attention.self.{name}")) for name in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + additive
        probabilities = np.exp(scores - scores.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        context = (probabilities @ v).transpose(0, 2, 1, 3).reshape(batch, length, shape.hidden_size)
        x = norm(linear(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = norm(linear(h, p + "output.dense") + x, p + "output.LayerNorm")
    pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


@pytest.fixture(scope="module")
def weights():
    return random_weights()


@pytest.fixture(scope="module")
def encoder(weights):
    return BertEncoder(SHAPE, weights, max_rows=SHAPE.max_positions)


SEQUENCES = [[1, 5, 9, 2], [1, 7, 2], [1, 3, 4, 8, 11, 13, 17, 19, 23, 29, 31, 2], [1, 2]]


class TestAgainstThePaddedReference:
    def test_a_ragged_batch_equals_the_masked_padded_batch(self, encoder, weights):
        np.testing.assert_allclose(encoder.encode(SEQUENCES), reference(weights, SEQUENCES), atol=2e-6)

    def test_a_text_gets_the_same_vector_alone_or_in_any_batch(self, encoder):
        together = encoder.encode(SEQUENCES)
        alone = np.stack([encoder.encode([sequence])[0] for sequence in SEQUENCES])
        np.testing.assert_allclose(together, alone, atol=1e-6)

    def test_passes_split_by_max_rows_change_nothing(self, weights):
        small = BertEncoder(SHAPE, weights, max_rows=SHAPE.max_positions)  # forces one pass per one or two texts
        large = BertEncoder(SHAPE, weights, max_rows=10_000)
        batch = SEQUENCES * 5
        np.testing.assert_allclose(small.encode(batch), large.encode(batch), atol=1e-6)

    def test_vectors_are_float32_and_unit_length(self, encoder):
        vectors = encoder.encode(SEQUENCES)
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


class TestGelu:
    @settings(max_examples=50, deadline=None)
    @given(st.lists(st.floats(-12, 12, width=32), min_size=1, max_size=64))
    def test_matches_the_exact_erf_form(self, values):
        x = np.array(values, dtype=np.float32)
        exact = np.array([v / 2 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
        _gelu(x)
        np.testing.assert_allclose(x, exact, atol=3e-7 * np.maximum(1, np.abs(exact)).max())


class TestRefuses:
    def test_missing_or_misshaped_weights(self, weights):
        broken = dict(weights)
        del broken["encoder.layer.1.output.dense.bias"]
        with pytest.raises(ValueError, match=r"no encoder\.layer\.1\.output\.dense\.bias"):
            BertEncoder(SHAPE, broken)
        misshaped = {**weights, "encoder.layer.0.intermediate.dense.weight": np.zeros((8, 16), dtype=np.float32)}
        with pytest.raises(ValueError, match=r"expected float32\[32, 16\]"):
            BertEncoder(SHAPE, misshaped)
        float64 = {**weights, "embeddings.LayerNorm.bias": weights["embeddings.LayerNorm.bias"].astype(np.float64)}
        with pytest.raises(ValueError, match="float64"):
            BertEncoder(SHAPE, float64)

    def test_sequences_it_cannot_encode(self, encoder):
        with pytest.raises(ValueError, match="1..24 tokens, not 0"):
            encoder.encode([[]])
        with pytest.raises(ValueError, match="not 25"):
            encoder.encode([[1] * 25])
        with pytest.raises(ValueError, match="outside the vocabulary"):
            encoder.encode([[1, VOCABULARY]])

    def test_inconsistent_shapes(self, weights):
        with pytest.raises(ValueError, match="not a multiple of 5 heads"):
            BertShape(hidden_size=16, layers=1, heads=5, intermediate_size=8, max_positions=8)
        with pytest.raises(ValueError, match="below one full sequence"):
            BertEncoder(SHAPE, weights, max_rows=SHAPE.max_positions - 1)
