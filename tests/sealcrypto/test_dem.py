import pytest

from sealcrypto import dem
from sealcrypto.errors import DecryptError

# MystenLabs/seal crates/crypto/src/dem.rs (tests module constants and regression vectors)
TWAIN = b"The difference between a Miracle and a Fact is exactly the difference between a mermaid and a seal."
TWAIN_AAD = b"Mark Twain"


class TestAesGcm:
    KEY = bytes.fromhex("43041389faab1f789fa56722b1def4c3ec6da22675e9bd8ad7329cd931bc840a")
    CIPHERTEXT = bytes.fromhex(
        "a3a5c857ee27937f43ccfb42b41ca2155c9a4a77a8e54af35f78a78ff102206142d1be22dfc39a6374463255934ae640"
        "adceeffb17e56b9190d8c5f6456e9e7ff1c4eaa45114b640b407efd371f26b1f7d7e48bd86d742a01c0ad7dbe18b86df"
        "188e27cb029978b7fd243d9a63bdabd76aa478"
    )

    def test_regression_vector(self):
        assert dem.aes_gcm_encrypt(self.KEY, TWAIN, TWAIN_AAD) == self.CIPHERTEXT
        assert dem.aes_gcm_decrypt(self.KEY, self.CIPHERTEXT, TWAIN_AAD) == TWAIN

    def test_wrong_aad_fails_opaquely(self):
        with pytest.raises(DecryptError, match="^decryption failed$"):
            dem.aes_gcm_decrypt(self.KEY, self.CIPHERTEXT, b"something else")

    def test_truncated_blob(self):
        with pytest.raises(DecryptError, match="decryption failed"):
            dem.aes_gcm_decrypt(self.KEY, b"short", b"")

    def test_bad_key_length(self):
        with pytest.raises(ValueError, match="32 bytes"):
            dem.aes_gcm_encrypt(b"k" * 16, b"m", b"")


class TestHmacCtr:
    KEY = bytes.fromhex("5bfdfd7c814903f1311bebacfffa3c001cbeb1cbb3275baa9aafe21fadd9f396")
    CIPHERTEXT = bytes.fromhex(
        "feadb8c8f781036f86b6a9f436cac6f9f68ba8fc8b8444f0331a5820f78580f32034f698f7ce15f25defae1749f0131c"
        "0a8b8c5e751b96aacf507d0dbd4d7790440d196a339fcb8498ca7dd236014e353729b7aa2cf524284a8d2305d2378494"
        "eadd6f"
    )
    MAC = bytes.fromhex("85d498365972c3dc7a53f94232f9cb10dcc94eff064d6835d41d7a7536b47b51")

    def test_regression_vector(self):
        assert dem.hmac_ctr_encrypt(self.KEY, TWAIN, TWAIN_AAD) == (self.CIPHERTEXT, self.MAC)
        assert dem.hmac_ctr_decrypt(self.KEY, self.CIPHERTEXT, TWAIN_AAD, self.MAC) == TWAIN

    def test_tampered_ciphertext_or_aad_fails(self):
        tampered = bytes([self.CIPHERTEXT[0] ^ 1]) + self.CIPHERTEXT[1:]
        with pytest.raises(DecryptError, match="decryption failed"):
            dem.hmac_ctr_decrypt(self.KEY, tampered, TWAIN_AAD, self.MAC)
        with pytest.raises(DecryptError, match="decryption failed"):
            dem.hmac_ctr_decrypt(self.KEY, self.CIPHERTEXT, b"Mark Twain!", self.MAC)

    def test_empty_message(self):
        blob, mac = dem.hmac_ctr_encrypt(self.KEY, b"", b"")
        assert blob == b"" and dem.hmac_ctr_decrypt(self.KEY, blob, b"", mac) == b""
