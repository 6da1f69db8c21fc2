"""The callback crypto of WeChat Work (developer.work.weixin.qq.com/document/path/91144).

- signature: `sha1("".join(sorted([token, timestamp, nonce, encrypt])))`, hex — compared in constant time;
- key: `b64decode(EncodingAESKey + "=")`, 43 characters → 32 bytes; AES-256-CBC with IV = key[:16];
- plaintext: `random(16) ‖ len(msg) as 4 bytes big-endian ‖ msg ‖ receiveid`, PKCS#7-padded to a multiple
  of 32 bytes (not 16: WeChat Work pads to its own block of 32).
Decryption checks everything it can: base64, whole AES blocks, the padding (every pad byte equal, 1–32),
the length field against what is left, and the receiveid (the corp id) in constant time. Any failure is a
`CallbackRejected` whose message never echoes the ciphertext or plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PAD_BLOCK = 32
AES_BLOCK = 16
MAX_TOKEN = 32


class CallbackRejected(ValueError):
    """A callback that must not be accepted: `status` is the HTTP answer (400 malformed, 403 not ours)."""

    status = 400


class ForgedSignature(CallbackRejected):
    status = 403


class WrongReceiver(CallbackRejected):
    status = 403


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()  # noqa: S324 — the protocol's


def aes_key(encoding_aes_key: str) -> bytes:
    if len(encoding_aes_key) != 43:
        raise ValueError("the EncodingAESKey has 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("the EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise ValueError("the EncodingAESKey does not decode to 32 bytes")
    return key


class CallbackCrypto:
    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not token or len(token) > MAX_TOKEN:
            raise ValueError(f"the callback token has 1 to {MAX_TOKEN} characters")
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.receive_id = receive_id.encode()

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), msg_signature.lower().encode()):
            raise ForgedSignature("msg_signature does not match")

    def decrypt(self, encrypt: str) -> bytes:
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRejected("Encrypt is not base64") from None
        if not raw or len(raw) % AES_BLOCK:
            raise CallbackRejected("Encrypt is not whole AES blocks (truncated?)")
        decryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:AES_BLOCK])).decryptor()
        plain = decryptor.update(raw) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= PAD_BLOCK or len(plain) < pad or plain[-pad:] != bytes([pad]) * pad:
            raise CallbackRejected("bad padding")
        content = plain[AES_BLOCK:-pad]
        if len(content) < 4:
            raise CallbackRejected("message too short")
        length = int.from_bytes(content[:4], "big")
        if length > len(content) - 4:
            raise CallbackRejected("message length exceeds the message")
        message, receiver = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(receiver, self.receive_id):
            raise WrongReceiver("the message is for another receiver")
        return message

    def open(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> bytes:
        """Verify, then decrypt: what a callback request must pass."""
        self.verify(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt(self, message: bytes, random16: bytes | None = None) -> str:
        """Encrypt `message` as WeChat Work does (for replies and tests)."""
        body = (random16 or os.urandom(AES_BLOCK)) + len(message).to_bytes(4, "big") + message + self.receive_id
        pad = PAD_BLOCK - len(body) % PAD_BLOCK
        body += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(self.key[:AES_BLOCK])).encryptor()
        return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode("ascii")
