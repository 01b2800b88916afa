from __future__ import annotations

import pytest

from ai_service.secrets import DecryptionError, SecretBox

SECRET = b"a-secret-of-more-than-thirty-two-characters"


def test_encryption_round_trips_and_hides_the_plaintext() -> None:
    box = SecretBox(SECRET)
    token = box.encrypt(b"<RSASK>private</RSASK>")
    assert b"private" not in token
    assert box.decrypt(token) == b"<RSASK>private</RSASK>"
    assert box.encrypt(b"x") != box.encrypt(b"x")  # random IV: equal inputs do not show


def test_another_key_cannot_decrypt() -> None:
    token = SecretBox(SECRET).encrypt(b"p12 bytes")
    with pytest.raises(DecryptionError, match="DTE_AI_SECRET_KEY"):
        SecretBox(SECRET + b"!").decrypt(token)


def test_tampered_ciphertext_is_refused() -> None:
    box = SecretBox(SECRET)
    token = bytearray(box.encrypt(b"p12 bytes"))
    token[-5] ^= 1
    with pytest.raises(DecryptionError):
        box.decrypt(bytes(token))


def test_api_keys_are_random_and_hashed_with_the_secret() -> None:
    box = SecretBox(SECRET)
    first, second = box.new_api_key(), box.new_api_key()
    assert first.key != second.key
    assert first.prefix == first.key[:8]
    assert first.key.startswith("dtk_")
    assert first.key_hash == box.hash_api_key(first.key)
    assert len(first.key_hash) == 64
    assert first.key not in first.key_hash
    # keyed: the same key hashes differently under another secret
    assert SecretBox(SECRET + b"!").hash_api_key(first.key) != first.key_hash


def test_repr_does_not_leak() -> None:
    assert SECRET.decode() not in repr(SecretBox(SECRET))
