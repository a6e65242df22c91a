import importlib.util
import json

import pytest

from attestation import errors
from attestation.policy import UnsafeAllowDebugMode
from attestation.trust import TrustRoot
from attestation.verifier import Verifier

from .conftest import ASSETS, asset

MANIFEST = json.loads(asset("testcases.json"))
BROKEN = sorted(name for name, case in MANIFEST.items() if case["error"])


def load_generator():
    spec = importlib.util.spec_from_file_location("make_testcases", ASSETS / "make_testcases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestGeneratedTestcases:
    @pytest.mark.parametrize("name", BROKEN)
    def test_broken_variant_fails_with_its_recorded_error(self, name):
        case = MANIFEST[name]
        with pytest.raises(getattr(errors, case["error"]), match=case["match"]):
            Verifier.aws().verify_archived(asset(name), policy=UnsafeAllowDebugMode())

    def test_manifest_covers_every_required_variant(self):
        assert set(MANIFEST) >= {
            "flipped_signature_bit.bin", "edited_pcr0_byte.bin", "truncated.bin", "wrong_root.bin",
            "tag18_wrapped.bin", "duplicate_key.bin", "trailing_bytes.bin",
        }  # fmt: skip

    def test_tag18_wrapped_document_still_verifies(self):
        document = Verifier.aws().verify_archived(asset("tag18_wrapped.bin"), policy=UnsafeAllowDebugMode())
        assert document.module_id == "i-078824548edcf6519-enc01784234ec227b58"

    def test_wrong_root_document_is_otherwise_valid(self):
        root = TrustRoot.from_pem(asset("wrong_root_test_root.pem"), allow_untrusted_test_root=True)
        Verifier(trust_root=root).verify_archived(asset("wrong_root.bin"), policy=UnsafeAllowDebugMode())

    def test_checked_in_files_are_exactly_what_the_generator_produces(self):
        for name, (content, error, pattern) in load_generator().build_testcases().items():
            assert asset(name) == content, f"{name} is stale: rerun make_testcases.py"
            if name in MANIFEST:
                assert (MANIFEST[name]["error"], MANIFEST[name]["match"]) == (error, pattern)
