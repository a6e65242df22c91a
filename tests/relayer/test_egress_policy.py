"""relayer.egress_policy and the settings that feed it: who may receive memory text, and what a refusal says."""

from __future__ import annotations

import pytest

from memwal_common.environment import SettingsError
from relayer.egress_policy import PlaintextPolicy, destination_of, parse_destinations
from relayer.embedding_models import LOCAL_MODEL_ID
from relayer.settings import Settings

BASE = {"MEMWAL_PACKAGE_ID": "0x1", "MEMWAL_REGISTRY_ID": "0x2"}


class TestDestinations:
    @pytest.mark.parametrize(
        ("url", "destination"),
        [
            ("https://api.openai.com/v1", "api.openai.com:443"),
            ("http://127.0.0.1:8080/v1", "127.0.0.1:8080"),
            ("https://LLM.Internal:8443", "llm.internal:8443"),
            ("http://[::1]:9000/v1", "[::1]:9000"),
            ("ftp://files.example", ""),
            ("not a url", ""),
            ("http://host:99999/", ""),
        ],
    )
    def test_of_a_url(self, url, destination):
        assert destination_of(url) == destination

    def test_parsed_sorted_lowercased_and_checked(self):
        assert parse_destinations(" B.example:443 ,a.example:80,,") == ("a.example:80", "b.example:443")
        for bad in ("no-port", "host:0", "host:x", ":443"):
            with pytest.raises(SettingsError, match="is not host:port"):
                parse_destinations(bad)
        with pytest.raises(SettingsError, match="more than 64"):
            parse_destinations(",".join(f"h{index}.example:443" for index in range(65)))


class TestPolicy:
    def test_open_lets_the_llm_have_text(self):
        policy = PlaintextPolicy("open", llm_url="https://api.openai.com/v1", allowed=frozenset())
        assert policy.llm_allowed and policy.llm_refusal("ask") is None

    def test_private_refuses_unless_the_llm_destination_is_allowlisted(self):
        refused = PlaintextPolicy("private", llm_url="https://api.openai.com/v1", allowed=frozenset({"llm.internal:443"}))
        message = refused.llm_refusal("ask")
        assert message is not None and not refused.llm_allowed
        assert message.startswith("ask is not available on this relayer: its egress policy is private")
        assert "allow_plaintext = true" in message
        allowed = PlaintextPolicy("private", llm_url="https://llm.internal/v1", allowed=frozenset({"llm.internal:443"}))
        assert allowed.llm_allowed and allowed.llm_refusal("ask") is None


class TestSettings:
    def test_defaults_are_upstream_s(self):
        settings = Settings.from_environ(BASE)
        settings.validate_embeddings()
        assert (settings.embedding_provider, settings.egress_policy, settings.embedding_model) == (
            "openai", "open", "openai/text-embedding-3-small")  # fmt: skip

    def test_local_defaults_to_its_one_model(self):
        settings = Settings.from_environ({**BASE, "EMBEDDING_PROVIDER": "local"})
        settings.validate_embeddings()
        assert settings.embedding_model == LOCAL_MODEL_ID

    def test_private_with_an_allowlisted_llm(self):
        settings = Settings.from_environ({
            **BASE, "EMBEDDING_PROVIDER": "local", "EGRESS_POLICY": "private", "OPENAI_API_BASE": "http://127.0.0.1:9100/v1",
            "EGRESS_PLAINTEXT_DESTINATIONS": "127.0.0.1:9100",
        })  # fmt: skip
        settings.validate_embeddings()
        assert settings.plaintext_policy.llm_allowed

    @pytest.mark.parametrize(
        ("environment", "match"),
        [
            ({"EMBEDDING_PROVIDER": "onnx"}, "EMBEDDING_PROVIDER must be openai or local"),
            ({"EGRESS_POLICY": "closed"}, "EGRESS_POLICY must be open or private"),
            ({"EGRESS_POLICY": "private"}, "EGRESS_POLICY=private keeps memory text inside: it needs EMBEDDING_PROVIDER=local"),
            ({"EMBEDDING_PROVIDER": "local", "EMBEDDING_MODEL": "BAAI/bge-small-en-v1.5"}, "runs sentence-transformers/all-MiniLM-L6-v2"),
        ],
    )
    def test_refused(self, environment, match):
        with pytest.raises(SettingsError, match=match):
            Settings.from_environ({**BASE, **environment}).validate_embeddings()
