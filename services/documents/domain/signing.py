"""Signed badge verification payloads (the QR code on the badge back).

Format (compact, offline-verifiable, JWS-like):

    BJSV1.<base64url(body)>.<base64url(signature)>
    body      = code | holder-name digest | validity | issuer | key id      (UTF-8, '|'-separated)
    signature = Ed25519 over the ASCII bytes "BJSV1.<base64url(body)>"

* holder-name digest = base64url(SHA-256(NFC(name))[:9]) — the name is not readable from the QR, but a
  verifier that sees the card (or the registry) can check it.
* validity = `YYYY.MM-YYYY.MM` as printed (D4).
* key id = first 16 hex digits of SHA-256(raw public key); one key per issuing organisation.
Base64url without padding. Ed25519 signatures are deterministic, so the badge PDF stays byte-identical.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "BJSV1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def name_digest(name: str) -> str:
    return b64url(hashlib.sha256(unicodedata.normalize("NFC", name.strip()).encode()).digest()[:9])


def key_id(public_key: Ed25519PublicKey | bytes) -> str:
    raw = public_key if isinstance(public_key, bytes) else public_raw(public_key)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(key: Ed25519PublicKey | bytes) -> str:
    if isinstance(key, bytes):
        key = Ed25519PublicKey.from_public_bytes(key)
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_key(data: bytes | str) -> Ed25519PublicKey:
    """Raw 32 bytes, PEM text, or base64url of the raw key."""
    if isinstance(data, str):
        data = data.strip()
        if data.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(data.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not an Ed25519 public key")
            return key
        data = b64url_decode(data)
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


@dataclass(frozen=True, slots=True)
class PayloadFields:
    code: str
    name_digest: str
    validity: str
    issuer: str
    key_id: str


def sign_payload(fields: PayloadFields, key: Ed25519PrivateKey) -> str:
    for value in (fields.code, fields.validity, fields.issuer, fields.key_id):
        if "|" in value:
            raise ValueError("'|' is not allowed in payload fields")
    body = "|".join((fields.code, fields.name_digest, fields.validity, fields.issuer, fields.key_id))
    signed = f"{PREFIX}.{b64url(body.encode())}"
    return f"{signed}.{b64url(key.sign(signed.encode('ascii')))}"


def badge_payload(*, code: str, holder_name: str, validity: str, issuer: str, key: Ed25519PrivateKey) -> str:
    kid = key_id(key.public_key())
    return sign_payload(PayloadFields(code, name_digest(holder_name), validity, issuer, kid), key)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    valid: bool
    reason: str  # "" when valid; MALFORMED, UNKNOWN_ISSUER, BAD_SIGNATURE, NAME_MISMATCH
    fields: PayloadFields | None = None


def parse_payload(payload: str) -> PayloadFields:
    parts = payload.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise ValueError("not a BJSV1 payload")
    body = b64url_decode(parts[1]).decode("utf-8").split("|")
    if len(body) != 5:
        raise ValueError("payload body must have 5 fields")
    return PayloadFields(*body)


def verify_payload(
    payload: str, lookup: Callable[[str, str], Ed25519PublicKey | None], *, holder_name: str = ""
) -> VerifyResult:
    """Verify offline. `lookup(issuer, key_id)` returns the issuer's public key or None."""
    try:
        fields = parse_payload(payload)
        prefix, body, sig = payload.strip().split(".")
        signature = b64url_decode(sig)
    except (ValueError, UnicodeDecodeError):
        return VerifyResult(False, "MALFORMED")
    key = lookup(fields.issuer, fields.key_id)
    if key is None:
        return VerifyResult(False, "UNKNOWN_ISSUER", fields)
    if key_id(key) != fields.key_id:
        return VerifyResult(False, "UNKNOWN_ISSUER", fields)
    try:
        key.verify(signature, f"{prefix}.{body}".encode("ascii"))
    except InvalidSignature:
        return VerifyResult(False, "BAD_SIGNATURE", fields)
    if holder_name and name_digest(holder_name) != fields.name_digest:
        return VerifyResult(False, "NAME_MISMATCH", fields)
    return VerifyResult(True, "", fields)
