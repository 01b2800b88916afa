"""At-rest encryption (Fernet) and API-key hashing, both keyed from ``settings.secret_key``.

Two independent keys are derived with HKDF-SHA256 (distinct ``info`` labels) so that the
encryption key never doubles as the MAC key.

API keys are stored as HMAC-SHA256(derived key, full key) rather than a bare SHA-256: a leaked
database alone then does not allow offline checking of guessed keys. Rotating ``secret_key``
therefore invalidates every API key as well as every encrypted blob.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

API_KEY_PREFIX = "dtk_"
#: How many leading characters of a key are stored in clear and shown, to tell keys apart.
SHOWN_PREFIX_CHARS = 8


class DecryptionError(RuntimeError):
    """A stored blob does not decrypt: the secret key changed or the row was tampered with."""


def _derive(secret: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(secret)


@dataclass(frozen=True)
class NewApiKey:
    key: str  # shown once, never stored
    prefix: str
    key_hash: str


class SecretBox:
    def __init__(self, secret: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"dte-ai/at-rest/v1")))
        self._mac_key = _derive(secret, b"dte-ai/api-key-hmac/v1")

    def __repr__(self) -> str:
        return "SecretBox(<redacted>)"

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise DecryptionError(
                "stored secret does not decrypt: DTE_AI_SECRET_KEY differs from the one used "
                "to store it"
            ) from exc

    def hash_api_key(self, key: str) -> str:
        return hmac.new(self._mac_key, key.encode(), hashlib.sha256).hexdigest()

    def new_api_key(self) -> NewApiKey:
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        return NewApiKey(key=key, prefix=key[:SHOWN_PREFIX_CHARS], key_hash=self.hash_api_key(key))
