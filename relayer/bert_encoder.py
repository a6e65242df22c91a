"""A BERT encoder's forward pass in numpy: what a sentence-transformers model computes, without PyTorch.

    token ids → word + position + token-type embeddings → LayerNorm
    → N × [ multi-head self-attention → add & LayerNorm → GELU feed-forward → add & LayerNorm ]
    → mean over the text's tokens → L2 normalisation

Weights carry Hugging Face ``BertModel`` names (``embeddings.word_embeddings.weight``,
``encoder.layer.{i}.attention.self.query.weight`` …), as a model's safetensors file holds them. Every
step is float32 and follows transformers' BertModel and sentence-transformers' Pooling/Normalize, so the
vectors match PyTorch's to float32 rounding (tests compare with the model authors' published values).

A batch is ragged: the tokens of all its texts are stacked into one matrix for the dense layers (no
padding rows, so no attention mask is needed), and attention runs text by text. ``max_rows`` bounds the
rows of one pass, so a large batch's activations stay bounded (a pass of 2048 rows peaks near 30 MiB).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

F32 = np.float32
# Abramowitz & Stegun 7.1.26: erf(z) = 1 − t·P(t)·exp(−z²), t = 1/(1 + p·z), z ≥ 0, |error| ≤ 1.5e-7 (below
# float32's resolution of erf's values), for BERT's exact GELU; numpy has no erf.
_ERF_P = F32(0.3275911)
_ERF_COEFFICIENTS = tuple(F32(c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592))


@dataclass(frozen=True)
class BertShape:
    """The architecture numbers (config.json of a BertModel)."""

    hidden_size: int
    layers: int
    heads: int
    intermediate_size: int
    max_positions: int
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        if min(self.hidden_size, self.layers, self.heads, self.intermediate_size, self.max_positions) < 1:
            raise ValueError("BERT dimensions must be positive")
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden size {self.hidden_size} is not a multiple of {self.heads} heads")


@dataclass(frozen=True)
class _Layer:
    qkv_weight: np.ndarray  # (3·hidden, hidden): query, key and value stacked, for one matrix product
    qkv_bias: np.ndarray
    output_weight: np.ndarray
    output_bias: np.ndarray
    attention_norm: tuple[np.ndarray, np.ndarray]
    intermediate_weight: np.ndarray
    intermediate_bias: np.ndarray
    ffn_weight: np.ndarray
    ffn_bias: np.ndarray
    output_norm: tuple[np.ndarray, np.ndarray]


class BertEncoder:
    """Sentence vectors (mean-pooled, L2-normalised) from token ids; thread-safe, weights are read-only."""

    def __init__(self, shape: BertShape, weights: Mapping[str, np.ndarray], *, max_rows: int = 2048) -> None:
        if max_rows < shape.max_positions:
            raise ValueError(f"max_rows {max_rows} is below one full sequence ({shape.max_positions})")
        self.shape = shape
        self.max_rows = max_rows
        hidden = shape.hidden_size

        def tensor(name: str, *dimensions: int) -> np.ndarray:
            array = weights.get(name)
            if array is None:
                raise ValueError(f"the weights have no {name}")
            if array.shape != dimensions or array.dtype != np.float32:
                raise ValueError(f"{name} is {array.dtype}{list(array.shape)}, expected float32{list(dimensions)}")
            return array

        self._word = tensor("embeddings.word_embeddings.weight", weights["embeddings.word_embeddings.weight"].shape[0], hidden)
        self._position = tensor("embeddings.position_embeddings.weight", shape.max_positions, hidden)
        self._token_type = tensor("embeddings.token_type_embeddings.weight", weights["embeddings.token_type_embeddings.weight"].shape[0], hidden)[0]
        self._embedding_norm = (tensor("embeddings.LayerNorm.weight", hidden), tensor("embeddings.LayerNorm.bias", hidden))
        self._layers = []
        for index in range(shape.layers):
            prefix = f"encoder.layer.{index}."

            def part(name: str, *dimensions: int, prefix: str = prefix) -> np.ndarray:
                return tensor(prefix + name, *dimensions)

            projections = ("query", "key", "value")
            self._layers.append(
                _Layer(
                    qkv_weight=np.concatenate([part(f"attention.self.{p}.weight", hidden, hidden) for p in projections]),
                    qkv_bias=np.concatenate([part(f"attention.self.{p}.bias", hidden) for p in projections]),
                    output_weight=part("attention.output.dense.weight", hidden, hidden),
                    output_bias=part("attention.output.dense.bias", hidden),
                    attention_norm=(part("attention.output.LayerNorm.weight", hidden), part("attention.output.LayerNorm.bias", hidden)),
                    intermediate_weight=part("intermediate.dense.weight", shape.intermediate_size, hidden),
                    intermediate_bias=part("intermediate.dense.bias", shape.intermediate_size),
                    ffn_weight=part("output.dense.weight", hidden, shape.intermediate_size),
                    ffn_bias=part("output.dense.bias", hidden),
                    output_norm=(part("output.LayerNorm.weight", hidden), part("output.LayerNorm.bias", hidden)),
                )
            )

    @property
    def vocabulary_size(self) -> int:
        return int(self._word.shape[0])

    def encode(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """``(len(sequences), hidden)`` float32, each row unit-length; ids must be in the vocabulary."""
        for ids in sequences:
            if not 0 < len(ids) <= self.shape.max_positions:
                raise ValueError(f"a sequence must have 1..{self.shape.max_positions} tokens, not {len(ids)}")
        out = np.empty((len(sequences), self.shape.hidden_size), dtype=np.float32)
        start = 0
        while start < len(sequences):
            end, rows = start, 0
            while end < len(sequences) and rows + len(sequences[end]) <= self.max_rows:
                rows += len(sequences[end])
                end += 1
            out[start:end] = self._encode_pass(sequences[start:end])
            start = end
        return out

    def _encode_pass(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        lengths = [len(ids) for ids in sequences]
        ids = np.fromiter((token for sequence in sequences for token in sequence), dtype=np.int64, count=sum(lengths))
        if ids.min() < 0 or ids.max() >= self.vocabulary_size:
            raise ValueError("a token id is outside the vocabulary")
        positions = np.concatenate([np.arange(length) for length in lengths])
        x = self._word[ids]
        x += self._position[positions]
        x += self._token_type
        _layer_norm(x, *self._embedding_norm, self.shape.layer_norm_eps)
        bounds = np.cumsum([0, *lengths])
        for layer in self._layers:
            x = self._layer(layer, x, bounds)
        pooled = np.stack([x[begin:end].mean(axis=0) for begin, end in itertools.pairwise(bounds)])
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), F32(1e-12))
        return (pooled / norms).astype(np.float32, copy=False)

    def _layer(self, layer: _Layer, x: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        hidden, heads = self.shape.hidden_size, self.shape.heads
        head_size = hidden // heads
        scale = F32(1.0 / math.sqrt(head_size))
        qkv = x @ layer.qkv_weight.T
        qkv += layer.qkv_bias
        context = np.empty_like(x)
        for begin, end in itertools.pairwise(bounds):
            length = end - begin
            query, key, value = qkv[begin:end].reshape(length, 3, heads, head_size).transpose(1, 2, 0, 3)
            scores = query @ key.transpose(0, 2, 1)  # (heads, length, length)
            scores *= scale
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context[begin:end] = (scores @ value).transpose(1, 0, 2).reshape(length, hidden)
        attended = context @ layer.output_weight.T
        attended += layer.output_bias
        attended += x
        _layer_norm(attended, *layer.attention_norm, self.shape.layer_norm_eps)
        intermediate = attended @ layer.intermediate_weight.T
        intermediate += layer.intermediate_bias
        _gelu(intermediate)
        out = intermediate @ layer.ffn_weight.T
        out += layer.ffn_bias
        out += attended
        _layer_norm(out, *layer.output_norm, self.shape.layer_norm_eps)
        return out


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> None:
    """In place, over the last axis: (x − mean) / sqrt(biased variance + eps) · weight + bias."""
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.einsum("ij,ij->i", x, x)[:, None]
    variance /= F32(x.shape[-1])
    variance += F32(eps)
    np.sqrt(variance, out=variance)
    x /= variance
    x *= weight
    x += bias


def _gelu(x: np.ndarray) -> None:
    """In place: x · Φ(x) = x/2 · (1 + erf(x/√2)), BERT's exact GELU (not the tanh approximation)."""
    z = np.multiply(x, F32(1 / math.sqrt(2)))
    np.abs(z, out=z)
    gaussian = np.multiply(z, z)
    np.negative(gaussian, out=gaussian)
    np.exp(gaussian, out=gaussian)  # exp(−z²)
    z *= _ERF_P
    z += F32(1)
    np.reciprocal(z, out=z)  # t
    polynomial = np.multiply(z, _ERF_COEFFICIENTS[0])
    for coefficient in _ERF_COEFFICIENTS[1:]:
        polynomial += coefficient
        polynomial *= z
    polynomial *= gaussian  # 1 − erf(|x|/√2)
    np.subtract(F32(1), polynomial, out=polynomial)
    np.copysign(polynomial, x, out=polynomial)  # erf(x/√2)
    polynomial += F32(1)
    polynomial *= F32(0.5)
    x *= polynomial
