import hashlib

import pytest

from attestation.errors import UserDataError
from attestation.user_data import MAGIC, USER_DATA_SIZE, EnclaveUserData

SPKI = hashlib.sha256(b"spki").digest()
CONFIG = hashlib.sha384(b"config").digest()
X25519 = bytes(range(32))


class TestEnclaveUserData:
    def test_layout_is_magic_spki_config_key(self):
        raw = EnclaveUserData(tls_spki_sha256=SPKI, configuration_sha384=CONFIG, provisioning_public_key=X25519).encode()
        assert USER_DATA_SIZE == 116 and len(raw) == 116
        assert raw == b"MWE1" + SPKI + CONFIG + X25519
        assert raw[4:36] == SPKI and raw[36:84] == CONFIG and raw[84:116] == X25519

    def test_round_trip(self):
        value = EnclaveUserData(tls_spki_sha256=SPKI, configuration_sha384=CONFIG, provisioning_public_key=X25519)
        assert EnclaveUserData.decode(value.encode()) == value

    def test_unknown_version_is_refused(self):
        raw = b"MWE2" + SPKI + CONFIG + X25519
        with pytest.raises(UserDataError, match="unknown layout version"):
            EnclaveUserData.decode(raw)

    @pytest.mark.parametrize("raw", [MAGIC + SPKI + CONFIG, MAGIC + SPKI + CONFIG + X25519 + b"\x00", b"", MAGIC])
    def test_wrong_size_is_refused(self, raw):
        with pytest.raises(UserDataError):
            EnclaveUserData.decode(raw)

    def test_absent_user_data_is_refused(self):
        with pytest.raises(UserDataError, match="no user_data"):
            EnclaveUserData.decode(None)

    def test_fields_must_have_their_sizes(self):
        with pytest.raises(UserDataError, match="configuration_sha384"):
            EnclaveUserData(tls_spki_sha256=SPKI, configuration_sha384=SPKI, provisioning_public_key=X25519)

    def test_attestation_package_imports_nothing_from_the_enclave(self):
        # The client library (which owns this layout) must not depend on the enclave's code.
        import ast
        import pathlib

        for path in sorted(pathlib.Path("attestation").glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                modules = []
                if isinstance(node, ast.ImportFrom) and node.level == 0:
                    modules = [node.module or ""]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                for module in modules:
                    assert module.split(".")[0] not in {"enclave", "relayer", "sidecar", "localnet", "devtools"}, (path.name, module)
