import hashlib
import json
from pathlib import Path

import pytest

from manifest import EnclaveDocument, Manifest, ManifestError, load_manifest, parse_enclave_document, parse_manifest
from manifest.writing import manifest_toml

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE = REPOSITORY / "docs" / "manifest.example.toml"
MINIMAL = b"""
format = 1
[relayer]
SUI_RPC_URL = "https://rpc.test"
[[egress]]
name = "sui"
destination = "rpc.test:443"
vsock_port = 8101
"""


def with_lines(*lines: str) -> bytes:
    return MINIMAL + "\n".join(lines).encode() + b"\n"


class TestInvalid:
    @pytest.mark.parametrize(
        ("text", "match"),
        [
            (b"format = 2", "format must be 1"),
            (b"", "format must be 1"),
            (b"format = 1\ncolour = 1", "unknown key.*'colour'"),
            (b"format = 1\n[enclave]\nport = 1", r"enclave: unknown key.*'port'"),
            (b"format = 1\n[enclave]\ningress_port = 7000", "reserved for the configuration channel"),
            (b"format = 1\n[enclave]\ningress_port = 70000", "port in 1..65535"),
            (b"format = 1\n[enclave]\ntls_hostname = 'a b'", "not a valid host name"),
            (b"format = 1\n[relayer]\nOPENAI_API_KEY = 'sk'", "is a secret"),
            (b"format = 1\n[relayer]\nDATABASE_URL = 'postgres://x'", "is a secret"),
            (b"format = 1\n[relayer]\nBIND = '0.0.0.0:1'", "set by the enclave runtime"),
            (b"format = 1\n[relayer]\nHTTPS_PROXY = 'http://evil'", "not a relayer variable"),
            (b"format = 1\n[relayer]\nSUI_NETWORK = 1.5", "must be a string, integer"),
            (b'format = 1\n[relayer]\nLLM_MODEL = "a\\nb"', "control characters"),
            (b"format = 1\n[relayer]\nWALRUS_AGGREGATOR_URLS = ['a,b']", "contains ','"),
            (b"format = 1\n[relayer]\nSUI_RPC_URL = 'https://rpc.test'", "rpc.test:443, which no \\[\\[egress\\]\\] route allows"),
            (b"format = 1\n[relayer]\nSUI_RPC_URL = 'ftp://rpc.test'", "not an http"),
        ],
    )
    def test_rejected_with_a_clear_message(self, text, match):
        with pytest.raises(ManifestError, match=match):
            parse_manifest(text)

    @pytest.mark.parametrize(
        ("lines", "match"),
        [
            (('[[egress]]', 'name = "sui"', 'destination = "b.test:443"', "vsock_port = 8102"), "named 'sui'"),
            (('[[egress]]', 'name = "b"', 'destination = "rpc.test:443"', "vsock_port = 8102"), "listed twice"),
            (('[[egress]]', 'name = "b"', 'destination = "b.test:443"', "vsock_port = 8101"), "already the vsock_port"),
            (('[[egress]]', 'name = "b"', 'destination = "b.test:443"', "vsock_port = 9000"), "nitro-cli's boot heartbeat"),
            (('[[egress]]', 'name = "b"', 'destination = "b.test:443"', "vsock_port = 8443"), "enclave.ingress_port"),
            (('[[egress]]', 'name = "B"', 'destination = "b.test:443"', "vsock_port = 8102"), "must be 1-32 of a-z"),
            (('[[egress]]', 'name = "b"', 'destination = "b.test"', "vsock_port = 8102"), "not host:port"),
            (('[[egress]]', 'name = "b"', 'destination = "10.0.0.1:5432"', "vsock_port = 8102"), "outside loopback"),
            (('[[egress]]', 'name = "b"', 'destination = "::1:443"', "vsock_port = 8102"), "in brackets"),
            (('[[egress]]', 'name = "b"', 'destination = "b.test:443"'), "vsock_port is required"),
            (('[[egress]]', 'name = "b"', 'destination = "b.test:443"', "vsock_port = 1", "via = 2"), "unknown key"),
            (("[host]", "enclave_cid = 3"), "enclave_cid must be between 4"),
            (("[host]", "cpu_count = 0"), "cpu_count"),
            (("[host]", "memory = 1"), r"host: unknown key"),
            (("[host.limits]", "idle_timeout_seconds = 'never'"), "must be a number"),
        ],
    )
    def test_rejected_tables(self, lines, match):
        with pytest.raises(ManifestError, match=match):
            parse_manifest(with_lines(*lines))

    def test_not_toml(self):
        with pytest.raises(ManifestError, match="not valid TOML"):
            parse_manifest(b"format = = 1")

    def test_too_large_before_parsing(self):
        with pytest.raises(ManifestError, match="larger than 65536 bytes"):
            parse_manifest(b"#" * (64 * 1024 + 1))

    def test_too_deep(self):
        nested = "[" * 20 + "]" * 20
        with pytest.raises(ManifestError, match="nested deeper than 6 levels"):
            parse_manifest(f"format = 1\n[relayer]\nSUI_NETWORK = {nested}".encode())

    def test_too_many_routes(self):
        routes = "".join(f'[[egress]]\nname = "r{n}"\ndestination = "r{n}.test:443"\nvsock_port = {10000 + n}\n' for n in range(65))
        with pytest.raises(ManifestError, match="egress has too many items"):
            parse_manifest(f"format = 1\n{routes}".encode())

    def test_file_errors_name_the_file(self, tmp_path):
        path = tmp_path / "m.toml"
        path.write_text("format = 3")
        with pytest.raises(ManifestError, match=f"manifest {path}: format"):
            load_manifest(path)
        with pytest.raises(ManifestError, match="cannot read manifest"):
            load_manifest(tmp_path / "missing.toml")


class TestEnclaveDocument:
    def test_defaults(self):
        manifest = parse_manifest(MINIMAL)
        document = manifest.enclave
        assert (document.tls_hostname, document.ingress_port) == ("localhost", 8443)
        assert manifest.host.enclave_cid == 16 and manifest.host.public_ingress == "tcp:0.0.0.0:443"

    def test_relayer_values_become_the_relayer_s_environment_strings(self):
        document = parse_manifest(
            b"""format = 1
[relayer]
SEAL_THRESHOLD = 2
RATE_LIMIT_DISABLED = true
WALRUS_AGGREGATOR_URLS = ["http://127.0.0.1:9001", "http://127.0.0.1:9002"]
SEAL_SERVER_CONFIGS = [{ weight = 1, objectId = "0x3" }]
[[egress]]
name = "one"
destination = "127.0.0.1:9001"
vsock_port = 8101
[[egress]]
name = "two"
destination = "127.0.0.1:9002"
vsock_port = 8102
"""
        ).enclave
        assert document.relayer_environment == {
            "SEAL_THRESHOLD": "2",
            "RATE_LIMIT_DISABLED": "true",
            "WALRUS_AGGREGATOR_URLS": "http://127.0.0.1:9001,http://127.0.0.1:9002",
            "SEAL_SERVER_CONFIGS": '[{"objectId":"0x3","weight":1}]',
        }

    def test_canonical_json_is_sorted_compact_and_the_digest_is_its_sha384(self):
        document = load_manifest(EXAMPLE).enclave
        text = document.canonical_json()
        assert b" " not in text and b"\n" not in text
        parsed = json.loads(text)
        assert list(parsed) == sorted(parsed) == ["egress", "enclave", "format", "provisioning", "relayer"]
        assert [route["name"] for route in parsed["egress"]] == sorted(route["name"] for route in parsed["egress"])
        assert document.digest() == hashlib.sha384(text).digest()

    def test_host_table_is_not_in_the_document(self):
        manifest = load_manifest(EXAMPLE)
        changed = Manifest(manifest.enclave, manifest.host.__class__(enclave_cid=99, public_ingress="tcp:0.0.0.0:8443"))
        assert changed.enclave.digest() == manifest.enclave.digest()
        assert b"enclave_cid" not in manifest.enclave.canonical_json()
        assert b"public_ingress" not in manifest.enclave.canonical_json()

    def test_order_and_spelling_do_not_change_the_digest_but_content_does(self):
        one = parse_manifest(MINIMAL + b'[[egress]]\nname = "a"\ndestination = "A.test:443"\nvsock_port = 8102\n')
        two = parse_manifest(
            b'format = 1\n[[egress]]\nname = "a"\ndestination = "a.test:443"\nvsock_port = 8102\n'
            b'[[egress]]\nname = "sui"\ndestination = "rpc.test:443"\nvsock_port = 8101\n[relayer]\nSUI_RPC_URL = "https://rpc.test"\n'
        )
        assert one.enclave.digest() == two.enclave.digest()
        moved = parse_manifest(MINIMAL.replace(b"8101", b"8109"))
        assert moved.enclave.digest() != parse_manifest(MINIMAL).enclave.digest()

    def test_the_enclave_reads_back_what_the_host_sends(self):
        document = load_manifest(EXAMPLE).enclave
        assert parse_enclave_document(document.canonical_json()) == document

    @pytest.mark.parametrize(
        ("raw", "match"),
        [
            (b"[1]", "must be a JSON object"),
            (b"{", "not valid JSON"),
            (b"\xff", "not valid JSON"),
            (b'{"format":1,"host":{"enclave_cid":16}}', "unknown key.*'host'"),
            (b"[" * 100_000, "larger than 65536 bytes"),
            (b'{"format":1,"relayer":{"SUI_NETWORK":' + b"[" * 5000 + b"]" * 5000 + b"}}", "not valid JSON: maximum recursion"),
            (b'{"format":1,"relayer":{"SUI_NETWORK":' + b"[" * 9 + b"]" * 9 + b"}}", "nested deeper than 6 levels"),
        ],
    )
    def test_the_enclave_refuses_a_malformed_document(self, raw, match):
        with pytest.raises(ManifestError, match=match):
            parse_enclave_document(raw)

    def test_hosts_table_gives_each_name_its_own_loopback_address(self):
        document = load_manifest(EXAMPLE).enclave
        table = document.hosts_table()
        names = sorted({route.host for route in document.egress})
        assert [name for _, name in table] == names
        assert [address for address, _ in table] == [f"127.0.0.{2 + index}" for index in range(len(names))]
        hosts = document.hosts_file()
        assert hosts.splitlines()[1:3] == ["127.0.0.1\tlocalhost", "::1\tlocalhost"]
        assert "127.0.0.2\taggregator.walrus-testnet.walrus.space" in hosts

    def test_loopback_literals_and_localhost_get_no_line(self):
        document = EnclaveDocument.from_mapping(
            {"format": 1, "egress": [{"name": "db", "destination": "127.0.0.1:5432", "vsock_port": 8101},
                                     {"name": "cache", "destination": "localhost:6379", "vsock_port": 8102}]}
        )  # fmt: skip
        assert document.hosts_table() == ()


class TestWriting:
    def test_the_example_round_trips(self):
        manifest = load_manifest(EXAMPLE)
        again = parse_manifest(manifest_toml(manifest, comment="two\nlines").encode())
        assert again == manifest
        assert again.enclave.digest() == manifest.enclave.digest()
