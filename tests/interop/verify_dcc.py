#!/usr/bin/env python3
"""Independent verifier for divoc-hcert output (used by formats/hcert/tests/interop.rs).

Usage: verify_dcc.py <dir> <schema.json>
  <dir>/dsc.pem     the Document Signer Certificate (PEM)
  <dir>/csr.pem     optional PKCS#10 request to check
  <dir>/certs.json  [{"name": ..., "hc1": "HC1:..."}]

For every HC1 string: strip the prefix, Base45-decode (base45), zlib-inflate, decode the
COSE_Sign1 and verify it with the DSC's public key (pycose), decode the CWT with cbor2 and
validate claim -260/1 against the DCC JSON schema (jsonschema). Prints one JSON report on
stdout. Exits non-zero only on setup errors (missing modules/files), never to signal a bad
certificate: results carry ok/error per certificate.
"""
import hashlib
import json
import sys
import zlib

import base45
import cbor2
import jsonschema
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from pycose.headers import KID, Algorithm
from pycose.keys import EC2Key, RSAKey
from pycose.keys.curves import P256
from pycose.messages import Sign1Message


def cose_key(cert):
    pub = cert.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        n = pub.public_numbers()
        return EC2Key(crv=P256, x=n.x.to_bytes(32, "big"), y=n.y.to_bytes(32, "big"))
    if isinstance(pub, rsa.RSAPublicKey):
        n = pub.public_numbers()
        return RSAKey(n=n.n.to_bytes((n.n.bit_length() + 7) // 8, "big"), e=n.e.to_bytes(3, "big"))
    raise ValueError("unsupported DSC key type")


def check(hc1, key, kid, validator):
    if not hc1.startswith("HC1:"):
        raise ValueError("no HC1: prefix")
    cose = zlib.decompress(base45.b45decode(hc1[4:]))
    msg = Sign1Message.decode(cose)
    if msg.phdr.get(KID) != kid:
        raise ValueError("protected kid %r != DSC kid %r" % (msg.phdr.get(KID), kid))
    msg.key = key
    if not msg.verify_signature():
        raise ValueError("signature invalid")
    claims = cbor2.loads(msg.payload)
    dcc = claims[-260][1]
    errors = sorted(validator.iter_errors(dcc), key=str)
    if errors:
        raise ValueError("schema: " + "; ".join(e.message for e in errors))
    return {
        "alg": str(msg.phdr.get(Algorithm)),
        "iss": claims.get(1),
        "iat": claims.get(6),
        "exp": claims.get(4),
        "dcc": dcc,
    }


def main():
    out_dir, schema_path = sys.argv[1], sys.argv[2]
    with open(schema_path) as f:
        schema = json.load(f)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    with open(out_dir + "/dsc.pem", "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    der = cert.public_bytes(Encoding.DER)
    kid = hashlib.sha256(der).digest()[:8]
    try:
        cert.verify_directly_issued_by(cert)
        self_signed_ok = True
    except Exception:  # noqa: BLE001 - reported, the Rust test decides
        self_signed_ok = False
    report = {
        "dsc": {
            "subject": cert.subject.rfc4514_string(),
            "kid_hex": kid.hex(),
            "self_signature_ok": self_signed_ok,
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
        },
        "results": [],
    }
    try:
        with open(out_dir + "/csr.pem", "rb") as f:
            csr = x509.load_pem_x509_csr(f.read())
        report["csr"] = {"subject": csr.subject.rfc4514_string(), "signature_ok": csr.is_signature_valid}
    except FileNotFoundError:
        pass
    key = cose_key(cert)
    with open(out_dir + "/certs.json") as f:
        certs = json.load(f)
    for c in certs:
        try:
            info = check(c["hc1"], key, kid, validator)
            report["results"].append({"name": c["name"], "ok": True, **info})
        except Exception as e:  # noqa: BLE001 - any failure is a rejection
            report["results"].append({"name": c["name"], "ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    json.dump(report, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
