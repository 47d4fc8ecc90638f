#!/usr/bin/env python3
"""Writes the verify page's test fixtures, independently of the project's Rust code.

Canonicalization is PyLD's URDNA2015 (pyld==2.0.4) over the context documents in
formats/credential/contexts/ (read in place, served by a local document loader: nothing is
fetched); signatures are PyNaCl's Ed25519. The keys come from fixed seeds, and Ed25519 signatures
are deterministic, so running this again writes the same bytes.

    python3 serve/verify-page/test/make_fixtures.py OUT.json

verify.test.mjs runs it into a temporary folder each time (nothing generated is committed, and the
context documents are not copied anywhere). OUT.json:
    {"now": ISO time the expectations hold at,
     "trust": {contexts, keys, statusLists} as GET /verify/v1/trust serves it,
     "trustVariants": {name: {list URL: list credential}}: status lists that replace trust's
                      statusLists for the cases naming the variant,
     "cases": [{"name", "input": {"text": str} | {"base64": QR bytes}, "trust": variant name or
                null, "expect": {"outcome", "code"?, "until"?, "format"?}}]}
verify.test.mjs runs every case through verifyPayload and compares.
"""
import base64
import copy
import gzip
import hashlib
import io
import json
import os
import sys
import zipfile

try:
    from pyld import jsonld
    from nacl.signing import SigningKey
except ImportError as e:
    print(f"needs pyld==2.0.4 and pynacl: {e}", file=sys.stderr)
    sys.exit(2)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
CONTEXT_DIR = os.path.join(REPO, "formats", "credential", "contexts")

CREDENTIALS_V1 = "https://www.w3.org/2018/credentials/v1"
CREDENTIALS_V2 = "https://www.w3.org/ns/credentials/v2"
VACCINATION_V1 = "https://cowin.gov.in/credentials/vaccination/v1"
VACCINATION_V2 = "https://cowin.gov.in/credentials/vaccination/v2"
ED25519_2020 = "https://w3id.org/security/suites/ed25519-2020/v1"
STATUS_V1 = "https://www.w3.org/ns/credentials/status/v1"

CONTEXT_FILES = {
    CREDENTIALS_V1: "credentials-v1.jsonld",
    CREDENTIALS_V2: "credentials-v2.jsonld",
    VACCINATION_V1: "divoc-vaccination-v1.jsonld",
    VACCINATION_V2: "divoc-vaccination-v2.jsonld",
    ED25519_2020: "ed25519-signature-2020-v1.jsonld",
    STATUS_V1: "bitstring-status-list-v1.jsonld",
    "https://w3id.org/security/v1": "security-v1.jsonld",
    "https://w3id.org/security/v2": "security-v2.jsonld",
}

# `suspendedUntil` is no term of the VC 2.0 or status list contexts (VC 2.0 has no @vocab), so a
# suspension list that carries it adds W3C's undefined-terms context (an @vocab of
# issuer-dependent IRIs), as `divoc`'s status_list sink does; without it, canonicalization would
# leave the end dates unsigned, and safe mode refuses the list.
UNDEFINED_TERMS_V2 = "https://www.w3.org/ns/credentials/undefined-terms/v2"
CONTEXT_FILES[UNDEFINED_TERMS_V2] = "undefined-terms-v2.jsonld"
SUSPENDED_UNTIL_CONTEXT = UNDEFINED_TERMS_V2

NOW = "2026-06-01T12:00:00Z"
TODAY = NOW[:10]
ISSUER = "did:web:divoc.example"
OTHER_ISSUER = "did:web:elsewhere.example"
STATUS_BASE = "https://divoc.example/status/covid19"
LIST_BITS = 131072  # the specification's minimum list size (16 KiB)

# Status list indexes of the certificates below.
INDEX_2018 = 7
INDEX_2020 = 8
INDEX_RDFC = 9
INDEX_REVOKED = 12
INDEX_SUSPENDED_UNTIL = 13
INDEX_SUSPENSION_ENDED = 14
INDEX_SUSPENDED_OPEN = 15
INDEX_REVOKED_V2018 = 100_000  # far into the list: the bit order across bytes matters


def load_contexts():
    contexts = {}
    for url, name in CONTEXT_FILES.items():
        with open(os.path.join(CONTEXT_DIR, name), encoding="utf-8") as f:
            contexts[url] = json.load(f)
    return contexts


CONTEXTS = load_contexts()


def document_loader(url, options=None):
    if url not in CONTEXTS:
        raise jsonld.JsonLdError("context not served offline: " + url, "jsonld.LoadDocumentError")
    return {"contextUrl": None, "documentUrl": url, "document": CONTEXTS[url]}


jsonld.set_document_loader(document_loader)


def canonize(doc):
    return jsonld.normalize(doc, {"algorithm": "URDNA2015", "format": "application/n-quads"})


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).digest()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58(data):
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58_ALPHABET[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


class Key:
    """An Ed25519 key from a fixed seed, named by `id` and controlled by `controller`."""

    def __init__(self, name, key_id, controller):
        self.signing = SigningKey(hashlib.sha256(("divoc verify page fixture " + name).encode()).digest())
        self.id = key_id
        self.controller = controller

    def trust_entry(self):
        public = bytes(self.signing.verify_key)
        return {"id": self.id, "controller": self.controller, "publicKeyBase58": base58(public)}

    def sign(self, message):
        return self.signing.sign(message).signature


def sign_2018(doc, key, created):
    """Ed25519Signature2018 with a detached JWS, as DIVOC's jsonld-signatures writes it."""
    proof = {"type": "Ed25519Signature2018", "created": created, "verificationMethod": key.id,
             "proofPurpose": "assertionMethod"}
    header = b64url(json.dumps({"alg": "EdDSA", "b64": False, "crit": ["b64"]}, separators=(",", ":")).encode())
    options = dict(proof, **{"@context": doc["@context"]})
    verify_data = sha256(canonize(options)) + sha256(canonize(doc))
    signature = key.sign((header + ".").encode("ascii") + verify_data)
    return dict(doc, proof=dict(proof, jws=header + ".." + b64url(signature)))


def sign_proof_value(doc, key, created, proof_type, cryptosuite=None):
    """Ed25519Signature2020 / DataIntegrityProof eddsa-rdfc-2022: sign hash(proof config) || hash(doc)."""
    proof = {"type": proof_type}
    if cryptosuite:
        proof["cryptosuite"] = cryptosuite
    proof.update({"created": created, "verificationMethod": key.id, "proofPurpose": "assertionMethod"})
    config = dict(proof, **{"@context": doc["@context"]})
    signature = key.sign(sha256(canonize(config)) + sha256(canonize(doc)))
    return dict(doc, proof=dict(proof, proofValue="z" + base58(signature)))


def sign_2020(doc, key, created):
    return sign_proof_value(doc, key, created, "Ed25519Signature2020")


def sign_rdfc(doc, key, created):
    return sign_proof_value(doc, key, created, "DataIntegrityProof", "eddsa-rdfc-2022")


def status_entries(index, purposes=("revocation", "suspension")):
    return [{
        "id": f"{STATUS_BASE}/{purpose}/0#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": purpose,
        "statusListIndex": str(index),
        "statusListCredential": f"{STATUS_BASE}/{purpose}/0",
    } for purpose in purposes]


def certificate(version, certificate_id, name, index=None, context_extra=()):
    """A DIVOC-shaped vaccination credential (VC 1.1 or 2.0), unsigned."""
    if version == 1:
        context = [CREDENTIALS_V1, VACCINATION_V1, *context_extra]
        if index is not None:
            context.append(STATUS_V1)
    else:
        context = [CREDENTIALS_V2, VACCINATION_V1, *context_extra]
    doc = {
        "@context": context,
        "type": ["VerifiableCredential", "ProofOfVaccinationCredential"],
        "credentialSubject": {
            "type": "Person",
            "id": "did:in.gov.uidai.aadhaar:" + certificate_id,
            "refId": "ref-" + certificate_id,
            "name": name,
            "gender": "Female",
            "age": "34",
            "nationality": "Indian",
            "address": {"streetAddress": "12 MG Road", "district": "Pune", "city": "Pune",
                        "addressRegion": "Maharashtra", "addressCountry": "IN", "postalCode": "411001"},
        },
        "issuer": ISSUER,
        "evidence": [{
            "id": "https://divoc.example/vaccine/" + certificate_id,
            "feedbackUrl": "https://divoc.example/?" + certificate_id,
            "infoUrl": "https://divoc.example/?" + certificate_id,
            "certificateId": certificate_id,
            "type": ["Vaccination"],
            "batch": "AB1234",
            "vaccine": "COVISHIELD",
            "manufacturer": "Serum Institute of India",
            "date": "2026-03-02T09:30:00.000Z",
            "effectiveStart": "2026-03-02",
            "effectiveUntil": "2027-03-02",
            "dose": 1,
            "totalDoses": 2,
            "verifier": {"name": "Dr. Anita Rao"},
            "facility": {"name": "District Hospital Pune",
                         "address": {"streetAddress": "1 Hospital Road", "district": "Pune", "city": "Pune",
                                     "addressRegion": "Maharashtra", "addressCountry": "IN", "postalCode": "411001"}},
        }],
        "nonTransferable": "true",
    }
    doc["issuanceDate" if version == 1 else "validFrom"] = "2026-03-02T09:35:00Z"
    if index is not None:
        doc["credentialStatus"] = status_entries(index)
    return doc


def encoded_list(set_bits):
    bits = bytearray(LIST_BITS // 8)
    for i in set_bits:
        bits[i // 8] |= 0x80 >> (i % 8)  # index 0 is the most significant bit of byte 0
    # mtime=0: the same bits give the same GZIP bytes, so the fixtures are reproducible.
    return "u" + b64url(gzip.compress(bytes(bits), mtime=0))


def status_list(purpose, set_bits, key, issuer=ISSUER, suspended_until=None, define_suspended_until=True, url=None):
    url = url or f"{STATUS_BASE}/{purpose}/0"
    context = [CREDENTIALS_V2]
    subject = {"id": url + "#list", "type": "BitstringStatusList", "statusPurpose": purpose,
               "encodedList": encoded_list(set_bits)}
    if suspended_until is not None:
        subject["suspendedUntil"] = suspended_until
        if define_suspended_until:
            context.append(SUSPENDED_UNTIL_CONTEXT)
    doc = {"@context": context, "id": url, "type": ["VerifiableCredential", "BitstringStatusListCredential"],
           "issuer": issuer, "validFrom": "2026-05-31T00:00:00Z", "credentialSubject": subject}
    return url, sign_rdfc(doc, key, "2026-05-31T00:00:00Z")


def tamper(doc, path, value):
    doc = copy.deepcopy(doc)
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


def qr_zip(doc):
    """DIVOC's native QR payload: a ZIP holding one DEFLATE entry certificate.json."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("certificate.json", date_time=(2026, 3, 2, 9, 35, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return buf.getvalue()


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[1]
    issuer_key = Key("issuer", ISSUER + "#key-1", ISSUER)
    untrusted_key = Key("untrusted", ISSUER + "#key-untrusted", ISSUER)
    other_issuer_key = Key("other issuer", OTHER_ISSUER + "#key-1", OTHER_ISSUER)
    created = "2026-03-02T09:35:00Z"

    cert_2018 = sign_2018(certificate(1, "100007", "Asha Verma", INDEX_2018), issuer_key, created)
    cert_2020 = sign_2020(certificate(1, "100008", "Ravi Kumar", INDEX_2020, [ED25519_2020]), issuer_key, created)
    cert_rdfc = sign_rdfc(certificate(2, "100009", "Meera Iyer", INDEX_RDFC), issuer_key, created)
    revoked = sign_rdfc(certificate(2, "100012", "Kiran Das", INDEX_REVOKED), issuer_key, created)
    revoked_2018 = sign_2018(certificate(1, "200000", "Vikram Singh", INDEX_REVOKED_V2018), issuer_key, created)
    suspended_until = sign_rdfc(certificate(2, "100013", "Sunita Patil", INDEX_SUSPENDED_UNTIL), issuer_key, created)
    suspension_ended = sign_2020(certificate(1, "100014", "Arjun Nair", INDEX_SUSPENSION_ENDED, [ED25519_2020]), issuer_key, created)
    suspended_open = sign_2018(certificate(1, "100015", "Lata Joshi", INDEX_SUSPENDED_OPEN), issuer_key, created)
    no_status = sign_rdfc(certificate(2, "100016", "Farah Khan"), issuer_key, created)
    vaccination_v2 = sign_rdfc(dict(certificate(2, "100017", "Neha Gupta", INDEX_2018),
                                    **{"@context": [CREDENTIALS_V2, VACCINATION_V2]}), issuer_key, created)
    unknown_key = sign_rdfc(certificate(2, "100018", "Omar Sheikh", INDEX_RDFC), untrusted_key, created)
    foreign_issuer = sign_2020(dict(certificate(1, "100019", "Priya Menon", INDEX_2020, [ED25519_2020]),
                                    issuer=OTHER_ISSUER), issuer_key, created)
    expired = sign_rdfc(dict(certificate(2, "100020", "Deepak Rao", INDEX_RDFC), validUntil="2026-05-01T00:00:00Z"),
                        issuer_key, created)

    revocation_url, revocation_list = status_list("revocation", [INDEX_REVOKED, INDEX_REVOKED_V2018], issuer_key)
    suspension_ends = [
        {"index": str(INDEX_SUSPENDED_UNTIL), "until": "2026-12-31"},
        {"index": str(INDEX_SUSPENSION_ENDED), "until": "2026-05-31"},  # the day before NOW
    ]
    suspension_url, suspension_list = status_list(
        "suspension", [INDEX_SUSPENDED_UNTIL, INDEX_SUSPENSION_ENDED, INDEX_SUSPENDED_OPEN], issuer_key,
        suspended_until=suspension_ends)

    trust = {
        "generatedAt": NOW,
        "contexts": CONTEXTS,
        "keys": [issuer_key.trust_entry(), other_issuer_key.trust_entry()],
        "statusLists": {revocation_url: revocation_list, suspension_url: suspension_list},
    }

    # Lists that must be refused: each replaces the good one in a copy of trust.
    cleared_revocations = tamper(revocation_list, ["credentialSubject", "encodedList"], encoded_list([]))
    lifted_suspension = tamper(suspension_list, ["credentialSubject", "suspendedUntil", 0, "until"], "2026-01-01")
    _, foreign_revocations = status_list("revocation", [], other_issuer_key, issuer=OTHER_ISSUER)
    _, undefined_term_list = status_list(
        "suspension", [INDEX_SUSPENDED_UNTIL], issuer_key, suspended_until=suspension_ends, define_suspended_until=False)
    _, swapped_purpose = status_list("suspension", [], issuer_key, url=revocation_url)
    variants = {
        "tampered-revocation-list": {revocation_url: cleared_revocations, suspension_url: suspension_list},
        "tampered-suspension-end": {revocation_url: revocation_list, suspension_url: lifted_suspension},
        "revocation-list-of-another-issuer": {revocation_url: foreign_revocations, suspension_url: suspension_list},
        "undefined-term-in-list": {revocation_url: revocation_list, suspension_url: undefined_term_list},
        "suspension-list-at-revocation-url": {revocation_url: swapped_purpose,
                                               suspension_url: suspension_list},
        "no-lists": {},
    }

    text = lambda doc: {"text": json.dumps(doc, indent=2, ensure_ascii=False)}
    qr = lambda doc: {"base64": base64.b64encode(qr_zip(doc)).decode("ascii")}
    tampered_name = lambda doc: tamper(doc, ["credentialSubject", "name"], doc["credentialSubject"]["name"] + "a")

    def case(name, doc_input, outcome, code=None, trust_variant=None, **more):
        expect = {"outcome": outcome, **more}
        if code:
            expect["code"] = code
        return {"name": name, "input": doc_input, "trust": trust_variant, "expect": expect}

    cases = [
        case("Ed25519Signature2018 (DIVOC native), VC 1.1", text(cert_2018), "VALID", "status-checked", format="divoc-vc"),
        case("Ed25519Signature2020, VC 1.1", text(cert_2020), "VALID", "status-checked"),
        case("eddsa-rdfc-2022, VC 2.0", text(cert_rdfc), "VALID", "status-checked"),
        case("eddsa-rdfc-2022 with the vaccination v2 context", text(vaccination_v2), "VALID", "status-checked"),
        case("DIVOC QR: ZIP of certificate.json", qr(cert_2018), "VALID", "status-checked", format="divoc-qr"),
        case("DIVOC QR of an eddsa-rdfc-2022 credential", qr(cert_rdfc), "VALID", "status-checked", format="divoc-qr"),
        case("no credentialStatus", text(no_status), "VALID", "no-status"),
        case("tampered name, Ed25519Signature2018", text(tampered_name(cert_2018)), "INVALID", "signature-mismatch"),
        case("tampered name, Ed25519Signature2020", text(tampered_name(cert_2020)), "INVALID", "signature-mismatch"),
        case("tampered name, eddsa-rdfc-2022", text(tampered_name(cert_rdfc)), "INVALID", "signature-mismatch"),
        case("tampered dose in a QR", qr(tamper(cert_2018, ["evidence", 0, "dose"], 2)), "INVALID", "signature-mismatch"),
        case("tampered status index", text(tamper(revoked, ["credentialStatus", 0, "statusListIndex"], "11")),
             "INVALID", "signature-mismatch"),
        case("tampered proof creation time", text(tamper(cert_rdfc, ["proof", "created"], "2026-03-03T09:35:00Z")),
             "INVALID", "signature-mismatch"),
        case("unknown key", text(unknown_key), "INVALID", "unknown-key"),
        case("issuer is not the key's controller", text(foreign_issuer), "INVALID", "issuer-mismatch"),
        case("expired (validUntil)", text(expired), "INVALID", "expired"),
        case("revoked, eddsa-rdfc-2022", text(revoked), "REVOKED", "revoked"),
        case("revoked, Ed25519Signature2018, index 100000", text(revoked_2018), "REVOKED", "revoked"),
        case("revoked, in a QR", qr(revoked), "REVOKED", "revoked", format="divoc-qr"),
        case("suspended until a date", text(suspended_until), "SUSPENDED", "suspended", until="2026-12-31"),
        case("suspended without an end date", text(suspended_open), "SUSPENDED", "suspended"),
        case("suspension ended yesterday", text(suspension_ended), "VALID", "status-checked"),
        case("status list missing", text(cert_2018), "INVALID", "status-list-unavailable", "no-lists"),
        case("revocation list altered after signing (revoked bit cleared)", text(revoked), "INVALID",
             "signature-mismatch", "tampered-revocation-list"),
        case("suspension end date altered after signing", text(suspended_until), "INVALID", "signature-mismatch",
             "tampered-suspension-end"),
        case("revocation list signed by another issuer", text(revoked), "INVALID", "status-list-untrusted",
             "revocation-list-of-another-issuer"),
        case("status list with a term no context defines", text(suspended_until), "INVALID", "not-canonicalizable",
             "undefined-term-in-list"),
        case("suspension list served for the revocation URL", text(cert_rdfc), "INVALID", "status-list-mismatch",
             "suspension-list-at-revocation-url"),
        case("not a certificate", {"text": "hello"}, "INVALID", "unrecognised"),
        case("broken JSON", {"text": "{\"issuer\": "}, "INVALID", "malformed"),
        case("damaged ZIP", {"base64": base64.b64encode(qr_zip(cert_2018)[:60]).decode("ascii")}, "INVALID", "malformed"),
    ]

    fixtures = {"now": NOW, "trust": trust, "trustVariants": variants, "cases": cases}
    with open(out, "w", encoding="utf-8") as f:
        json.dump(fixtures, f, indent=1, ensure_ascii=False, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
