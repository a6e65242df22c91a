import base64
import json

import pytest

from chain.personal_message import sign_personal_message
from sealcrypto import SessionKey
from sealcrypto.elgamal import verification_key_matches
from sealcrypto.errors import SessionError, SessionExpired
from sealcrypto.seal_approve import parse_programmable_transaction
from sealcrypto.session import request_bytes, session_message, verify_request_signature

NOW_MS = 1_700_000_000_000
PACKAGE = "0x" + "ab" * 32
USER_SEED = bytes(range(32))
SESSION_SEED = bytes(range(32, 64))


def make_session(**overrides):
    args = dict(user_seed=USER_SEED, package_id=PACKAGE, ttl_min=5, now_ms=NOW_MS, session_seed=SESSION_SEED)
    args.update(overrides)
    return SessionKey.create(**args)


def clock_at(ms):
    return lambda: ms / 1000


class TestSessionMessage:
    def test_signed_message_regression(self):
        # MystenLabs/seal crates/key-server/src/signed_message.rs test_signed_message_regression
        message = session_message(
            "0x0000c457b42d48924087ea3f22d35fd2fe9afdf5bdfe38cc51c0f14f3282f6d5",
            30,
            1622548800,
            base64.b64decode("DX2rNYyNrapO+gBJp1sHQ2VVsQo2ghm7aA9wVxNJ13U="),
        )
        assert message == (
            b"Accessing keys of package 0x0000c457b42d48924087ea3f22d35fd2fe9afdf5bdfe38cc51c0f14f3282f6d5 "
            b"for 30 mins from 1970-01-19 18:42:28 UTC, session key DX2rNYyNrapO+gBJp1sHQ2VVsQo2ghm7aA9wVxNJ13U="
        )

    def test_mvr_name_replaces_package(self):
        # signed_message.rs test_signed_message_mvr_regression
        message = session_message("@my/package", 30, 1622548800, base64.b64decode("DX2rNYyNrapO+gBJp1sHQ2VVsQo2ghm7aA9wVxNJ13U="))
        assert message.startswith(b"Accessing keys of package @my/package for 30 mins from 1970-01-19 18:42:28 UTC")


class TestRequestFormat:
    def test_signed_request_regression(self):
        # MystenLabs/seal crates/key-server/src/signed_message.rs test_signed_request_regression
        expected = bytes.fromhex(
            "38000100d92bc457b42d48924087ea3f22d35fd2fe9afdf5bdfe38cc51c0f14f3282f6d503626c610e7365616c5f61707072"
            "6f76655f7800003085946cd4134ecb8f7739bbd3522d1c8fab793c6c431a8b0b77b4f1885d4c096aafab755e7b8bce868841"
            "0cee9908fb29608faaf686c0dcbe3f65f1130e8be538d7ea009347d397f517188dfa14417618887a0412e404fff56efbafb6"
            "3d1fc4970a1187b4ccb6e767a91822312e533fa53dee69f77ef5130be095e147ff3d40e96e8ddc4bf554dae3bcc34048fe93"
            "30cccf"
        )
        ptb, enc_key, enc_vk = expected[1:57], expected[58:106], expected[107:]
        assert request_bytes(ptb, enc_key, enc_vk) == expected
        call = parse_programmable_transaction(ptb).commands[0]
        assert (call.module, call.function) == ("bla", "seal_approve_x")
        assert verification_key_matches(enc_key, enc_vk)


class TestImport:
    def test_exported_round_trip_and_certificate(self):
        session = make_session()
        exported = session.to_exported()
        assert exported["sessionKey"].startswith("suiprivkey1")
        header = base64.b64encode(json.dumps(exported).encode())
        imported = SessionKey.from_header(header, clock=clock_at(NOW_MS + 60_000))
        certificate = imported.certificate()
        assert certificate.user == session.address and certificate.ttl_min == 5
        signature = base64.b64decode(imported.sign_request(b"ptb", b"k" * 48, b"v" * 96))
        assert verify_request_signature(certificate.session_vk, request_bytes(b"ptb", b"k" * 48, b"v" * 96), signature)
        assert "suiprivkey" not in repr(imported) and "_seed" not in repr(imported)

    def test_signature_by_another_key_is_rejected(self):
        exported = make_session().to_exported()
        other = make_session(user_seed=bytes(32))
        exported["personalMessageSignature"] = sign_personal_message(bytes(32), other.personal_message())
        with pytest.raises(SessionError, match="does not verify|not the session's address"):
            SessionKey.from_exported(exported, clock=clock_at(NOW_MS))

    def test_signature_over_other_text_is_rejected(self):
        exported = make_session().to_exported()
        exported["ttlMin"] = 6  # the signed text said 5
        with pytest.raises(SessionError, match="does not verify"):
            SessionKey.from_exported(exported, clock=clock_at(NOW_MS))

    def test_expired_and_future_sessions(self):
        exported = make_session().to_exported()
        with pytest.raises(SessionExpired, match="expired"):
            SessionKey.from_exported(exported, clock=clock_at(NOW_MS + 5 * 60_000))
        with pytest.raises(SessionExpired, match="future"):
            SessionKey.from_exported(exported, clock=clock_at(NOW_MS - 60_000))

    @pytest.mark.parametrize(
        "field, value, message",
        [
            ("address", "nope", "address"),
            ("ttlMin", 31, "ttlMin"),
            ("creationTimeMs", "1", "creationTimeMs"),
            ("sessionKey", "suiprivkey1xyz", "sessionKey"),
            ("personalMessageSignature", None, "lacks"),
        ],
    )
    def test_malformed_fields(self, field, value, message):
        exported = make_session().to_exported()
        exported[field] = value
        with pytest.raises(SessionError, match=message):
            SessionKey.from_exported(exported, clock=clock_at(NOW_MS))

    def test_header_size_cap_and_encoding(self):
        with pytest.raises(SessionError, match="too large"):
            SessionKey.from_header("A" * 9000)
        with pytest.raises(SessionError, match="base64 JSON"):
            SessionKey.from_header("not base64!")
