"""Signed QR verification payload: offline verification with the issuer's Ed25519 public key."""

from services.documents.domain import signing

KEY = signing.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = signing.Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def lookup(issuer, kid):
    return KEY.public_key() if issuer == "agencies/A" else None


def make(**kw):
    args = dict(code="R1122A001", holder_name="张三", validity="2022.06-2025.06", issuer="agencies/A", key=KEY)
    args.update(kw)
    return signing.badge_payload(**args)


def test_payload_verifies_offline_and_carries_code_issuer_validity():
    p = make()
    r = signing.verify_payload(p, lookup, holder_name="张三")
    assert r.valid and r.reason == ""
    assert (r.fields.code, r.fields.issuer, r.fields.validity) == ("R1122A001", "agencies/A", "2022.06-2025.06")
    assert r.fields.key_id == signing.key_id(KEY.public_key())
    assert len(p) < 200 and p.startswith("BJSV1.")


def test_payload_is_deterministic():
    assert make() == make()


def test_tampered_payload_is_rejected_with_bad_signature():
    p = make()
    prefix, body, sig = p.split(".")
    fields = signing.b64url_decode(body).decode().replace("R1122A001", "R1122A002")
    forged = f"{prefix}.{signing.b64url(fields.encode())}.{sig}"
    assert signing.verify_payload(forged, lookup).reason == "BAD_SIGNATURE"


def test_payload_signed_by_another_key_is_rejected():
    p = make(key=OTHER)
    assert signing.verify_payload(p, lookup).reason == "UNKNOWN_ISSUER"


def test_holder_name_mismatch_and_malformed_and_unknown_issuer():
    assert signing.verify_payload(make(), lookup, holder_name="李四").reason == "NAME_MISMATCH"
    assert signing.verify_payload("hello", lookup).reason == "MALFORMED"
    assert signing.verify_payload("BJSV1.!!.??", lookup).reason == "MALFORMED"
    assert signing.verify_payload(make(issuer="agencies/08"), lookup).reason == "UNKNOWN_ISSUER"


def test_public_key_round_trips_through_pem_and_raw():
    pem = signing.public_pem(KEY.public_key())
    assert signing.public_raw(signing.load_public_key(pem)) == signing.public_raw(KEY.public_key())
    raw_b64 = signing.b64url(signing.public_raw(KEY.public_key()))
    assert signing.key_id(signing.load_public_key(raw_b64)) == signing.key_id(KEY.public_key())
