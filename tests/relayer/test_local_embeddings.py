"""The in-process model (relayer.local_embeddings): published reference values, the pinned files, offline
loading, truncation as sentence-transformers does it, and that zero-padding to 1536 keeps every cosine."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayer.embedding_models import LOCAL_MODEL_DIMENSIONS
from relayer.local_embeddings import (
    MAX_SEQUENCE_TOKENS,
    MODEL_FILES,
    REFERENCE_HELLO_WORLD,
    REFERENCE_SENTENCES,
    REFERENCE_SIMILARITIES,
    ModelUnavailable,
    load_local_model,
    load_model_from,
    model_directory,
    padded,
    reference_errors,
)
from relayer.validation import EMBEDDING_DIMENSIONS


@pytest.fixture(scope="module")
def model():
    return load_local_model()


class TestPublishedValues:
    def test_the_authors_similarity_matrix(self, model):
        vectors = model.embed(list(REFERENCE_SENTENCES))
        np.testing.assert_allclose(vectors @ vectors.T, np.array(REFERENCE_SIMILARITIES), atol=5e-5)

    def test_hello_world_as_fastembed_pins_it(self, model):
        np.testing.assert_allclose(model.embed(["hello world"])[0, :5], REFERENCE_HELLO_WORLD, atol=1e-5)

    def test_the_self_check_agrees(self, model):
        assert reference_errors(model) == []

    def test_python_m_self_check_exits_0(self):
        result = subprocess.run([sys.executable, "-m", "relayer.local_embeddings"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "reproduces the published reference values" in result.stdout


class TestVectors:
    def test_unit_length_384_dimensions(self, model):
        vectors = model.embed(["I am allergic to peanuts", "", "🦀 émigré naïve café 東京"])
        assert vectors.shape == (3, LOCAL_MODEL_DIMENSIONS) and vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    def test_an_empty_batch(self, model):
        assert model.embed([]).shape == (0, LOCAL_MODEL_DIMENSIONS)

    def test_texts_are_cut_at_256_tokens_with_the_specials(self, model):
        words = " ".join(f"word{index}" for index in range(400))
        ids = model.token_ids(words)
        assert len(ids) == MAX_SEQUENCE_TOKENS and ids[0] == 101 and ids[-1] == 102  # [CLS] … [SEP]
        # What lies past the cut changes nothing; what lies before it does.
        np.testing.assert_array_equal(model.embed([words + " and a different ending"]), model.embed([words]))
        assert not np.array_equal(model.embed(["prefix " + words]), model.embed([words]))

    def test_batch_and_single_agree(self, model):
        texts = ["short", "a somewhat longer sentence about the weather in Lisbon", "x " * 300]
        together = model.embed(texts)
        for text, vector in zip(texts, together, strict=True):
            np.testing.assert_allclose(model.embed([text])[0], vector, atol=1e-6)

    def test_meaning_not_spelling(self, model):
        allergy, query, distractor = model.embed(["I'm severely allergic to peanuts", "Which food makes me ill?",
                                                  "My favourite snack is peanut butter on toast"])  # fmt: skip
        assert float(allergy @ query) > float(distractor @ query)


class TestPadding:
    def test_padded_vectors_have_the_stored_dimensions_and_zeros(self, model):
        vector = model.embed_padded(["hello"])[0]
        assert len(vector) == EMBEDDING_DIMENSIONS
        assert vector[LOCAL_MODEL_DIMENSIONS:] == [0.0] * (EMBEDDING_DIMENSIONS - LOCAL_MODEL_DIMENSIONS)
        assert vector[:LOCAL_MODEL_DIMENSIONS] == [float(v) for v in model.embed(["hello"])[0]]

    @settings(max_examples=200, deadline=None)
    @given(st.integers(0, 2**32 - 1), st.sampled_from([1e-30, 1e-3, 1.0, 1e30]))
    def test_cosine_is_unchanged_exactly(self, seed, scale):
        a, b = np.random.default_rng(seed).standard_normal((2, LOCAL_MODEL_DIMENSIONS)) * scale
        pa, pb = np.array(padded(a)), np.array(padded(b))
        # The padded coordinates contribute 0·x = 0 to every sum: the same terms, so the same float result.
        assert float(pa @ pb) == float(a @ b)
        assert float(pa @ pa) == float(a @ a) and float(pb @ pb) == float(b @ b)

    def test_refuses_a_vector_longer_than_the_stored_dimensions(self):
        with pytest.raises(ValueError, match="does not fit"):
            padded(np.zeros(EMBEDDING_DIMENSIONS + 1))


class TestLoading:
    def test_loaded_once_per_process(self):
        assert load_local_model() is load_local_model()

    def test_loads_with_every_socket_refused(self, monkeypatch):
        def no_network(*args, **kwargs):
            raise AssertionError("the model tried to open a socket while loading")

        monkeypatch.setattr(socket, "socket", no_network)
        monkeypatch.setattr(socket, "create_connection", no_network)
        model = load_model_from(model_directory())
        assert model.embed(["offline"]).shape == (1, LOCAL_MODEL_DIMENSIONS)

    @pytest.mark.parametrize("name", sorted(MODEL_FILES))
    def test_a_file_that_is_not_the_pinned_one_is_refused(self, tmp_path, name):
        for file in MODEL_FILES:
            shutil.copyfile(model_directory() / file, tmp_path / file)
        with (tmp_path / name).open("r+b") as changed:
            changed.seek(1000)
            byte = changed.read(1)
            changed.seek(1000)
            changed.write(bytes([byte[0] ^ 1]))
        with pytest.raises(ModelUnavailable, match=f"{name} has SHA-256 [0-9a-f]{{64}}, not the pinned {MODEL_FILES[name]}"):
            load_model_from(tmp_path)

    def test_a_missing_file_is_refused(self, tmp_path):
        with pytest.raises(ModelUnavailable, match="cannot read .*model.safetensors"):
            load_model_from(tmp_path)
