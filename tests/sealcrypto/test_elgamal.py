from sealcrypto import ElGamalKeyPair, KeyServerSecret, bls, elgamal_encrypt
from sealcrypto.elgamal import verification_key_matches


class TestElGamal:
    def test_round_trip_of_a_user_key(self):
        keypair = ElGamalKeyPair.generate()
        usk = KeyServerSecret.generate().extract_point(b"\x01" * 32 + b"id")
        ciphertext = elgamal_encrypt(keypair.public_key, usk)
        assert keypair.decrypt(ciphertext) == usk

    def test_other_secret_does_not_decrypt(self):
        usk = bls.g1_generator() * bls.Scalar(5)
        ciphertext = elgamal_encrypt(ElGamalKeyPair.generate().public_key, usk)
        assert ElGamalKeyPair.generate().decrypt(ciphertext) != usk

    def test_verification_key_binds_the_same_secret(self):
        first, second = ElGamalKeyPair.generate(), ElGamalKeyPair.generate()
        assert verification_key_matches(first.public_key, first.verification_key)
        assert not verification_key_matches(first.public_key, second.verification_key)

    def test_repr_hides_secret(self):
        assert repr(ElGamalKeyPair.generate()) == "ElGamalKeyPair(<redacted>)"
