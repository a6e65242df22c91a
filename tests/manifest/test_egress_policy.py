"""EGRESS_POLICY in the manifest: private needs the local model; allow_plaintext marks only the LLM route,
only under private; the flag is part of the committed document, and absent from it when false."""

from __future__ import annotations

import json

import pytest

from manifest import EnclaveDocument, ManifestError, parse_manifest
from manifest.writing import manifest_toml

PRIVATE = b"""
format = 1
[relayer]
EGRESS_POLICY = "private"
EMBEDDING_PROVIDER = "local"
OPENAI_API_BASE = "https://llm.internal:8443/v1"
SUI_RPC_URL = "https://rpc.test"
[[egress]]
name = "sui"
destination = "rpc.test:443"
vsock_port = 8101
[[egress]]
name = "llm"
destination = "llm.internal:8443"
vsock_port = 8102
"""


def document(text: bytes) -> EnclaveDocument:
    return parse_manifest(text).enclave


class TestPrivate:
    def test_without_allowlisted_routes_nothing_may_receive_plaintext(self):
        parsed = document(PRIVATE)
        assert parsed.plaintext_destinations == ()
        assert all("allow_plaintext" not in route for route in parsed.as_json()["egress"])

    def test_the_llm_route_can_be_allowlisted_and_that_is_committed(self):
        allowed = document(PRIVATE + b"allow_plaintext = true\n")
        assert allowed.plaintext_destinations == ("llm.internal:8443",)
        llm = next(route for route in allowed.as_json()["egress"] if route["name"] == "llm")
        assert llm["allow_plaintext"] is True
        assert allowed.digest() != document(PRIVATE).digest()

    def test_the_flag_survives_writing_and_reading_the_manifest(self):
        manifest = parse_manifest(PRIVATE + b"allow_plaintext = true\n")
        assert parse_manifest(manifest_toml(manifest).encode()) == manifest

    def test_false_is_the_default_and_hashes_as_if_absent(self):
        assert document(PRIVATE + b"allow_plaintext = false\n").canonical_json() == document(PRIVATE).canonical_json()

    def test_a_document_without_the_policy_hashes_as_before(self):
        # No key is added to documents that do not use the feature: existing deployments keep their PCR16.
        plain = document(PRIVATE.replace(b'EGRESS_POLICY = "private"\n', b""))
        assert b"allow_plaintext" not in plain.canonical_json()
        assert json.loads(plain.canonical_json())["egress"][0] == {"destination": "llm.internal:8443", "name": "llm", "vsock_port": 8102}


class TestRefused:
    @pytest.mark.parametrize(
        ("text", "match"),
        [
            (PRIVATE.replace(b'EMBEDDING_PROVIDER = "local"\n', b""), 'set relayer.EMBEDDING_PROVIDER = "local"'),
            (PRIVATE.replace(b'"local"', b'"openai"'), "keeps memory text inside"),
            (PRIVATE.replace(b'EGRESS_POLICY = "private"\n', b"") + b"allow_plaintext = true\n", 'only means something under relayer.EGRESS_POLICY = "private"'),
            (PRIVATE.replace(b'vsock_port = 8101\n', b'vsock_port = 8101\nallow_plaintext = true\n'), r"allow_plaintext is for the LLM endpoint .*llm.internal:8443.*, not rpc.test:443"),
            (PRIVATE + b'allow_plaintext = "yes"\n', "allow_plaintext must be true or false"),
        ],
    )  # fmt: skip
    def test_with_a_clear_message(self, text, match):
        with pytest.raises(ManifestError, match=match):
            parse_manifest(text)

    def test_the_runtime_variable_cannot_be_set_in_the_manifest(self):
        with pytest.raises(ManifestError, match="EGRESS_PLAINTEXT_DESTINATIONS is set by the enclave runtime"):
            parse_manifest(PRIVATE.replace(b"[relayer]\n", b'[relayer]\nEGRESS_PLAINTEXT_DESTINATIONS = "evil.example:443"\n'))
