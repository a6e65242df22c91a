import base64

import pytest

from manifest import ManifestError, load_manifest, parse_manifest
from manifest.writing import manifest_toml

CIPHERTEXT = base64.b64encode(b"\x01\x02\x03" * 40).decode()
BASE = """
format = 1
[[egress]]
name = "kms"
destination = "kms.us-east-1.amazonaws.com:443"
vsock_port = 8101
[[egress]]
name = "peers"
destination = "memwal-peers.internal:8443"
vsock_port = 8102
"""
FULL = BASE + f"""
[provisioning]
sources = ["peer", "kms", "operator"]
retry_seconds = 5
[provisioning.kms]
endpoint = "https://kms.us-east-1.amazonaws.com"
region = "us-east-1"
ciphertext = "{CIPHERTEXT}"
key_id = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
[provisioning.peer]
peers = ["https://memwal-peers.internal:8443"]
"""


class TestProvisioningSection:
    def test_parsed_committed_and_written_back(self, tmp_path):
        manifest = parse_manifest(FULL.encode())
        section = manifest.enclave.provisioning
        assert section.sources == ("peer", "kms", "operator") and section.retry_seconds == 5
        assert section.kms.ciphertext == b"\x01\x02\x03" * 40 and section.kms.region == "us-east-1"
        assert section.peer.peers == ("https://memwal-peers.internal:8443",)
        assert b'"provisioning":{"kms":' in manifest.enclave.canonical_json()
        path = tmp_path / "manifest.toml"
        path.write_text(manifest_toml(manifest))
        assert load_manifest(path) == manifest

    def test_the_choice_changes_the_attested_hash(self):
        operator_only = parse_manifest(BASE.encode()).enclave
        assert operator_only.provisioning.sources == ("operator",)
        assert parse_manifest(FULL.encode()).enclave.digest() != operator_only.digest()

    @pytest.mark.parametrize(
        ("text", "match"),
        [
            ('[provisioning]\nsources = ["kms"]', r"\[provisioning.kms\] is needed"),
            ('[provisioning]\nsources = ["peer"]', r"\[provisioning.peer\] is needed"),
            ('[provisioning]\nsources = ["email"]', "not one of"),
            ("[provisioning]\nsources = []", "at least one"),
            ('[provisioning]\nsources = ["operator", "operator"]', "each source once"),
            ("[provisioning]\nretry_seconds = 0", "retry_seconds"),
            ("[provisioning]\ncolour = 1", "unknown key"),
            ('[provisioning]\nsources = ["peer"]\n[provisioning.peer]\npeers = ["https://elsewhere.test:443"]',
             r"provisioning.peer.peers\[0\] reaches elsewhere.test:443, which no \[\[egress\]\] route allows"),
            ('[provisioning]\nsources = ["peer"]\n[provisioning.peer]\npeers = ["http://memwal-peers.internal:8443"]',
             "https://"),
            ('[provisioning]\nsources = ["kms"]\n[provisioning.kms]\nendpoint = "https://kms.us-east-1.amazonaws.com"\n'
             'region = "us-east-1"\nciphertext = "not base64!"', "base64"),
            ('[provisioning]\nsources = ["kms"]\n[provisioning.kms]\nendpoint = "https://kms.us-east-1.amazonaws.com"\n'
             f'region = "Virginia"\nciphertext = "{CIPHERTEXT}"', "AWS region"),
            ('[provisioning]\nsources = ["kms"]\n[provisioning.kms]\nendpoint = "https://kms.eu-west-1.amazonaws.com"\n'
             f'region = "eu-west-1"\nciphertext = "{CIPHERTEXT}"', "which no \\[\\[egress\\]\\] route allows"),
        ],
    )  # fmt: skip
    def test_refused(self, text, match):
        with pytest.raises(ManifestError, match=match):
            parse_manifest((BASE + text + "\n").encode())
