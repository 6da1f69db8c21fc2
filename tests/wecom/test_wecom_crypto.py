"""The callback crypto against the reference's known-answer vector and wechatpy, an independent implementation."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from plugins.wecom import CALLBACK_TOKEN, CORP_ID, ENCODING_AES_KEY, wechatpy_crypto, wechatpy_encrypt

from idbroker.wecom.callbacks.crypto import CallbackCrypto, CallbackRejected, ForgedSignature, WrongReceiver, signature

# The reference's vector (wechatpy's tests/test_crypto.py): token, key, corp id, timestamp, nonce, echostr.
KAT_TOKEN = "123456"
KAT_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
KAT_CORP = "wx49f0ab532d5d035a"
KAT_TIMESTAMP, KAT_NONCE = "1411443780", "437374425"
KAT_ECHOSTR = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
KAT_SIGNATURE = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96"
KAT_PLAIN = b"5927782489442352469"


def ours() -> CallbackCrypto:
    return CallbackCrypto(CALLBACK_TOKEN, ENCODING_AES_KEY, CORP_ID)


def test_the_known_answer_vector() -> None:
    crypto = CallbackCrypto(KAT_TOKEN, KAT_KEY, KAT_CORP)
    assert signature(KAT_TOKEN, KAT_TIMESTAMP, KAT_NONCE, KAT_ECHOSTR) == KAT_SIGNATURE
    assert crypto.open(KAT_SIGNATURE, KAT_TIMESTAMP, KAT_NONCE, KAT_ECHOSTR) == KAT_PLAIN
    with pytest.raises(ForgedSignature):  # wechatpy's "should fail" case: another nonce
        crypto.open(KAT_SIGNATURE, KAT_TIMESTAMP, "437374424", KAT_ECHOSTR)
    with pytest.raises(WrongReceiver):
        CallbackCrypto(KAT_TOKEN, KAT_KEY, "wx0000000000000000").decrypt(KAT_ECHOSTR)


def test_we_read_what_wechatpy_writes_and_wechatpy_reads_what_we_write() -> None:
    xml = "<xml><Event><![CDATA[subscribe]]></Event><FromUserName><![CDATA[wx-abc]]></FromUserName></xml>"
    encrypt, sig = wechatpy_encrypt(xml, "n0nce", "1700000000")
    assert ours().open(sig, "1700000000", "n0nce", encrypt) == xml.encode()
    for size in (0, 1, 11, 12, 13, 31, 32, 33, 200):  # every padding length, including a whole block of 32
        message = ("张" * size).encode()
        encrypt = ours().encrypt(message)
        sig = signature(CALLBACK_TOKEN, "1", "2", encrypt)
        assert wechatpy_crypto().check_signature(sig, "1", "2", encrypt) == message.decode()


def _raw(crypto: CallbackCrypto, plain: bytes) -> str:
    encryptor = Cipher(algorithms.AES(crypto.key), modes.CBC(crypto.key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def test_padding_length_and_receiver_are_checked() -> None:
    crypto = ours()
    body = b"R" * 16 + (5).to_bytes(4, "big") + b"hello" + CORP_ID.encode()
    pad = 32 - len(body) % 32
    assert crypto.decrypt(_raw(crypto, body + bytes([pad]) * pad)) == b"hello"
    with pytest.raises(CallbackRejected, match="padding"):  # pad bytes that disagree
        crypto.decrypt(_raw(crypto, body + bytes([1]) * (pad - 1) + bytes([pad])))
    with pytest.raises(CallbackRejected, match="padding"):  # a pad byte above 32
        crypto.decrypt(_raw(crypto, body + bytes([pad]) * (pad - 1) + bytes([33])))
    with pytest.raises(CallbackRejected, match="padding"):  # zero is no padding at all
        crypto.decrypt(_raw(crypto, body + bytes([pad]) * (pad - 1) + bytes([0])))
    long_claim = b"R" * 16 + (500).to_bytes(4, "big") + b"hello" + CORP_ID.encode()
    pad = 32 - len(long_claim) % 32
    with pytest.raises(CallbackRejected, match="length"):
        crypto.decrypt(_raw(crypto, long_claim + bytes([pad]) * pad))
    other = b"R" * 16 + (5).to_bytes(4, "big") + b"hello" + b"wwsomeoneelse0001"
    pad = 32 - len(other) % 32
    with pytest.raises(WrongReceiver):
        crypto.decrypt(_raw(crypto, other + bytes([pad]) * pad))
    encrypt = crypto.encrypt(b"hello")
    with pytest.raises(CallbackRejected, match="whole AES blocks"):
        crypto.decrypt(base64.b64encode(base64.b64decode(encrypt)[:-5]).decode())
    with pytest.raises(CallbackRejected, match="base64"):
        crypto.decrypt("not base64 at all!")


def test_a_forged_signature_is_refused_whatever_its_case_or_length() -> None:
    crypto = ours()
    encrypt = crypto.encrypt(b"<xml/>")
    good = signature(CALLBACK_TOKEN, "1", "2", encrypt)
    crypto.verify(good.upper(), "1", "2", encrypt)  # hex compares case-insensitively
    for forged in (good[:-1] + ("0" if good[-1] != "0" else "1"), good[:20], "", signature("other", "1", "2", encrypt)):
        with pytest.raises(ForgedSignature):
            crypto.verify(forged, "1", "2", encrypt)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="43"):
        CallbackCrypto(CALLBACK_TOKEN, ENCODING_AES_KEY[:-1], CORP_ID)
    with pytest.raises(ValueError, match="1 to 32"):
        CallbackCrypto("t" * 33, ENCODING_AES_KEY, CORP_ID)
