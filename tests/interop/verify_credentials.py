#!/usr/bin/env python3
"""Independent verifier for our credentials: PyLD (URDNA2015) + PyNaCl.

Proof suites: Ed25519Signature2018 (detached JWS over SHA-256(C14N(proof options)) ||
SHA-256(C14N(document))), and the Data Integrity suites Ed25519Signature2020 and
DataIntegrityProof/eddsa-rdfc-2022 (proofValue = z + base58btc(Ed25519 over the same two hashes,
the proof config carrying the document's @context)). A line may also be a
BitstringStatusListCredential: after its proof verifies, its encodedList (u + base64url of GZIP)
is decoded here and the set bits are printed as `list <id> <purpose> set=<i,j,...>
until=<i:day,...>`.

Nothing here shares code with the Rust implementation: canonicalization is PyLD's, the signature
check is libsodium's (PyNaCl), the JWS handling and base58 are written out below.

usage: verify_credentials.py CONTEXT_MAP_JSON CREDENTIALS_JSONL PUBLIC_KEY_BASE58 ISSUER
  CONTEXT_MAP_JSON   {"<context url>": "<path of the local context file>", ...} (nothing is fetched)
prints: verified=<n> tampered_rejected=<n>; exit 0 only if every credential verifies, every
tampered copy is rejected and every issuer equals the key's controller.
"""
import base64
import copy
import gzip
import hashlib
import json
import sys

from pyld import jsonld
import nacl.signing
import nacl.exceptions

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58decode(s):
    n = 0
    for ch in s:
        n = n * 58 + B58.index(ch)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(s) - len(s.lstrip("1"))
    return b"\0" * pad + raw


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def canon(doc):
    return jsonld.normalize(doc, {"algorithm": "URDNA2015", "format": "application/n-quads"})


def verify(cred, vk):
    proof = dict(cred["proof"])
    doc = {k: v for k, v in cred.items() if k != "proof"}
    if proof["type"] in ("Ed25519Signature2020", "DataIntegrityProof"):
        if proof["type"] == "DataIntegrityProof" and proof.get("cryptosuite") != "eddsa-rdfc-2022":
            raise ValueError("unexpected cryptosuite %r" % proof.get("cryptosuite"))
        value = proof.pop("proofValue")
        if not value.startswith("z"):
            raise ValueError("proofValue is not multibase base58btc")
        config = dict(proof)
        config["@context"] = cred["@context"]
        hash_data = hashlib.sha256(canon(config).encode()).digest() + hashlib.sha256(canon(doc).encode()).digest()
        vk.verify(hash_data, b58decode(value[1:]))
        return
    jws = proof.pop("jws")
    opts = dict(proof)
    opts["@context"] = cred["@context"]
    verify_data = hashlib.sha256(canon(opts).encode()).digest() + hashlib.sha256(canon(doc).encode()).digest()
    header_b64, payload, sig_b64 = jws.split(".")
    if payload != "":
        raise ValueError("JWS is not detached")
    header = json.loads(b64url_decode(header_b64))
    if header != {"alg": "EdDSA", "b64": False, "crit": ["b64"]}:
        raise ValueError("unexpected JWS header %r" % header)
    vk.verify((header_b64 + ".").encode() + verify_data, b64url_decode(sig_b64))


def describe_status_list(cred):
    subject = cred["credentialSubject"]
    encoded = subject["encodedList"]
    if not encoded.startswith("u"):
        raise ValueError("encodedList is not multibase base64url")
    bits = gzip.decompress(b64url_decode(encoded[1:]))
    if len(bits) * 8 < 131072:
        raise ValueError("status list shorter than the minimum 131072 bits")
    set_bits = [i for i in range(len(bits) * 8) if bits[i // 8] & (0x80 >> (i % 8))]
    until = ",".join("%s:%s" % (e["index"], e["until"]) for e in subject.get("suspendedUntil", []))
    return "list %s %s set=%s until=%s" % (cred["id"], subject["statusPurpose"], ",".join(map(str, set_bits)), until)


def main(argv):
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        paths = json.load(f)
    contexts = {}
    for url, path in paths.items():
        with open(path) as f:
            contexts[url] = json.load(f)

    def loader(url, options=None):
        if url not in contexts:
            raise jsonld.JsonLdError("context not available offline: " + url, "jsonld.LoadDocumentError")
        return {"contextUrl": None, "documentUrl": url, "document": contexts[url]}

    jsonld.set_document_loader(loader)
    vk = nacl.signing.VerifyKey(b58decode(argv[3]))
    issuer = argv[4]
    ok = rejected = failures = 0
    with open(argv[2]) as f:
        for lineno, line in enumerate(f, 1):
            cred = json.loads(line)
            try:
                verify(cred, vk)
                if "BitstringStatusListCredential" in cred.get("type", []):
                    print(describe_status_list(cred))
                if cred["issuer"] != issuer or not cred["proof"]["verificationMethod"].startswith(issuer + "#"):
                    raise ValueError("issuer is not the controller of the verification method")
                ok += 1
            except Exception as e:  # report and count every failure
                failures += 1
                print("credential %d: NOT verified: %s" % (lineno, e), file=sys.stderr)
            tampered = copy.deepcopy(cred)
            subject = tampered["credentialSubject"]
            if "encodedList" in subject:
                subject["statusPurpose"] = "suspension" if subject["statusPurpose"] == "revocation" else "revocation"
            else:
                subject["name"] = (subject.get("name") or "") + "x"
            try:
                verify(tampered, vk)
                failures += 1
                print("credential %d: tampered copy verified!" % lineno, file=sys.stderr)
            except (nacl.exceptions.BadSignatureError, ValueError):
                rejected += 1
    print("verified=%d tampered_rejected=%d failures=%d" % (ok, rejected, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
