#!/usr/bin/env python3
"""Independent SMART Health Card check with jwcrypto (used by divoc-fhir's interop test).

usage: verify_shc.py JWKS_FILE CARD_FILE...

Each CARD_FILE holds one compact JWS; when CARD_FILE.qr exists it holds the `shc:/` numeric QR
text, which is decoded here and must equal the JWS. For every card one JSON line is printed:
{"file": ..., "ok": true} or {"file": ..., "ok": false, "error": "..."}.
Exit status 0 when every card was examined (verdicts are in the output), 2 on usage errors;
a missing jwcrypto is an ImportError (non-zero exit), never a silent pass.
"""
import json
import os
import sys
import zlib

from jwcrypto import jwk, jws  # noqa: E402  (fail loudly when missing)

CVX = "http://hl7.org/fhir/sid/cvx"
ICD11_SYSTEMS = ("http://id.who.int/icd11/mms", "http://hl7.org/fhir/sid/icd-11")
SHC_TYPES = [
    "https://smarthealth.cards#health-card",
    "https://smarthealth.cards#immunization",
    "https://smarthealth.cards#covid19",
]


def b64url_decode(s):
    import base64
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def qr_to_jws(text):
    assert text.startswith("shc:/"), "QR text does not start with shc:/"
    digits = text[len("shc:/"):]
    assert len(digits) % 2 == 0 and digits.isdigit(), "QR numeric part malformed"
    return "".join(chr(int(digits[i:i + 2]) + 45) for i in range(0, len(digits), 2))


def check_bundle(bundle):
    assert bundle["resourceType"] == "Bundle", "fhirBundle is not a Bundle"
    assert bundle["type"] == "collection", "Bundle.type is not collection"
    entries = bundle["entry"]
    assert len(entries) >= 2, "bundle needs a Patient and at least one Immunization"
    for i, e in enumerate(entries):
        assert e["fullUrl"] == "resource:%d" % i, "fullUrl %r is not resource:%d" % (e["fullUrl"], i)
        r = e["resource"]
        for forbidden in ("id", "meta", "text"):
            assert forbidden not in r, "resource %d carries %s (SHC minimisation)" % (i, forbidden)
    patient = entries[0]["resource"]
    assert patient["resourceType"] == "Patient", "first entry is not a Patient"
    assert patient["name"], "Patient has no name"
    for e in entries[1:]:
        imm = e["resource"]
        assert imm["resourceType"] == "Immunization", "entry is a %s" % imm["resourceType"]
        assert imm["status"] == "completed", "Immunization.status is not completed"
        assert imm["patient"]["reference"] == "resource:0", "patient reference is not resource:0"
        assert len(imm["occurrenceDateTime"]) >= 10, "occurrenceDateTime missing"
        codings = imm["vaccineCode"]["coding"]
        assert any(c.get("system") == CVX and c.get("code", "").isdigit() for c in codings), \
            "no CVX coding"
        for c in codings:
            assert c.get("system") not in ICD11_SYSTEMS, "ICD-11 used as vaccine code"
            assert not c.get("code", "").startswith("XM"), "ICD-11 code %s as vaccine" % c["code"]
            assert "display" not in c, "Coding.display present (SHC minimisation)"
        assert "text" not in imm["vaccineCode"], "CodeableConcept.text present"


def check_card(path, keyset):
    with open(path, encoding="utf-8") as f:
        compact = f.read().strip()
    qr_path = path + ".qr"
    if os.path.exists(qr_path):
        with open(qr_path, encoding="utf-8") as f:
            assert qr_to_jws(f.read().strip()) == compact, "QR numeric text does not decode to the JWS"
    header = json.loads(b64url_decode(compact.split(".")[0]))
    assert list(header.keys()) == ["zip", "alg", "kid"], "header members %r" % list(header.keys())
    assert header["zip"] == "DEF" and header["alg"] == "ES256", "header %r" % header
    key = keyset.get_key(header["kid"])
    assert key is not None, "kid %s not in JWKS" % header["kid"]
    assert key.thumbprint() == header["kid"], "kid is not the RFC 7638 thumbprint"
    pub = json.loads(key.export_public())
    assert pub.get("crv") == "P-256" and pub.get("kty") == "EC", "key is not EC P-256"
    token = jws.JWS()
    token.deserialize(compact)
    token.verify(key, alg="ES256")  # raises on a bad signature
    payload = json.loads(zlib.decompress(token.objects["payload"], -15).decode("utf-8-sig"))
    assert isinstance(payload["iss"], str) and payload["iss"].startswith("http"), "iss"
    assert isinstance(payload["nbf"], (int, float)), "nbf is not a number"
    assert payload["vc"]["type"] == SHC_TYPES, "vc.type %r" % payload["vc"]["type"]
    subject = payload["vc"]["credentialSubject"]
    assert subject["fhirVersion"] == "4.0.1", "fhirVersion"
    check_bundle(subject["fhirBundle"])


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        keyset = jwk.JWKSet.from_json(f.read())
    for path in sys.argv[2:]:
        try:
            check_card(path, keyset)
            print(json.dumps({"file": path, "ok": True}))
        except Exception as e:  # every failure is a verdict for this card
            print(json.dumps({"file": path, "ok": False, "error": "%s: %s" % (type(e).__name__, e)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
