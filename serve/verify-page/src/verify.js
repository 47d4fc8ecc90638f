// Certificate verification for the verify page: no DOM, no network.
//
// verifyPayload(input, trust) decides one of VALID / REVOKED / SUSPENDED / INVALID for
//   - a pasted credential JSON                          (format "divoc-vc")
//   - raw QR bytes holding a ZIP with certificate.json  (format "divoc-qr", DIVOC's native QR)
//   - a SMART Health Card "shc:/..." text or QR         (format "shc", see shc.js)
//   - an EU DCC "HC1:..." text or QR                    (format "eu-dcc", see dcc.js)
// using only what `trust` holds (fetched once from /verify/v1/trust and cached by the page):
//   contexts     {url: JSON-LD context document}: the only documents canonicalization may load
//   keys         [{id, controller, publicKeyBase58 | publicKeyMultibase}]: trusted Ed25519 keys
//   statusLists  {list credential URL: BitstringStatusListCredential}
//   jwks         {issuer URL: {keys: [JWK]}} (SMART Health Cards)
//   dsc          [PEM X.509 certificate] (EU DCC document signers)
// Every decision is explained: INVALID always carries `reason` (for the person) and `code` (a short
// word without personal data, what the page reports to the server).

import jsonld from "jsonld";
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { base58, base64urlnopad } from "@scure/base";
import { gunzipSync, unzipSync } from "fflate";
import { verifySmartHealthCard } from "./shc.js";
import { verifyEuDcc } from "./dcc.js";
import { Invalid, bytesToText, compact, concatBytes, firstOf } from "./common.js";

export { Invalid };

const UTF8 = new TextEncoder();

/**
 * Verifies a scanned or pasted certificate.
 *
 * @param {string|Uint8Array} input pasted text, or the raw bytes of a QR code
 * @param {object} trust keys, contexts and status lists (see the top of this file)
 * @param {{now?: Date}} [options] `now` fixes the clock (validity dates, suspension end dates)
 * @returns {Promise<{outcome: string, format: string, code: string, reason?: string,
 *   until?: string, note?: string, warning?: string, details?: object}>}
 */
export async function verifyPayload(input, trust, options = {}) {
  const now = options.now || new Date();
  let format = "unknown";
  try {
    const payload = recognise(input);
    format = payload.format;
    switch (payload.format) {
      case "divoc-vc":
        return { format, ...(await verifyCredential(parseJson(payload.text, "the pasted text"), trust || {}, now)) };
      case "divoc-qr":
        return { format, ...(await verifyCredential(credentialFromZip(payload.zip), trust || {}, now)) };
      case "shc":
        return { format, ...(await verifySmartHealthCard(payload.text, trust || {}, now)) };
      case "eu-dcc":
        return { format, ...(await verifyEuDcc(payload.text, trust || {}, now)) };
      default:
        throw new Error("unreachable format " + payload.format);
    }
  } catch (e) {
    if (e instanceof Invalid) return { outcome: "INVALID", format, code: e.code, reason: e.message };
    // Anything else is a bug or a document our libraries refuse; still a decision, never a crash.
    return { outcome: "INVALID", format, code: "error", reason: "could not verify: " + (e && e.message ? e.message : String(e)) };
  }
}

// ---------------------------------------------------------------------------------------------
// Recognising the payload

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04]; // "PK\3\4": a local file header

function startsWith(bytes, prefix) {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

/**
 * Tells the payload's format without parsing it: {format, zip} for DIVOC's QR bytes, {format, text}
 * otherwise. Throws Invalid when the input is none of the formats.
 */
function recognise(input) {
  if (input instanceof Uint8Array) {
    if (startsWith(input, ZIP_MAGIC)) return { format: "divoc-qr", zip: input };
    const text = bytesToText(input);
    if (text === null) throw new Invalid("unrecognised", "the QR code holds binary data that is not a DIVOC certificate");
    return recogniseText(text);
  }
  if (typeof input === "string") return recogniseText(input);
  throw new Invalid("unrecognised", "nothing to verify");
}

function recogniseText(raw) {
  const text = raw.replace(/^\uFEFF/, "").trim();
  if (text === "") throw new Invalid("empty", "nothing to verify: the payload is empty");
  if (/^shc:\//i.test(text)) return { format: "shc", text };
  if (text.startsWith("HC1:")) return { format: "eu-dcc", text };
  if (text.startsWith("{")) return { format: isHealthCardFile(text) ? "shc" : "divoc-vc", text };
  if (COMPACT_JWS.test(text)) return { format: "shc", text }; // the only compact JWS read here
  throw new Invalid("unrecognised", "not a certificate: expected credential JSON, a DIVOC QR, shc:/ or HC1:");
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** A pasted .smart-health-card file: {"verifiableCredential": [JWS, ...]}, no proof of its own. */
function isHealthCardFile(text) {
  try {
    const value = JSON.parse(text);
    return Boolean(value && Array.isArray(value.verifiableCredential) && !value.proof);
  } catch {
    return false;
  }
}

/** The credential in DIVOC's QR: certificate.json of the ZIP. */
function credentialFromZip(zip) {
  try {
    return parseJson(unzipCertificate(zip), "certificate.json");
  } catch (e) {
    // One of DIVOC's generators wrote the ZIP as text, UTF-8-expanding every byte >= 0x80 (its
    // "PK\3\4" start survives that). Only when the bytes fail as a ZIP: undo it and try again.
    const collapsed = collapseUtf8ExpandedBytes(zip);
    if (collapsed) return parseJson(unzipCertificate(collapsed), "certificate.json");
    throw e;
  }
}

/** Bytes that are the UTF-8 encoding of code points 0..255 (at least one >= 0x80), decoded; else null. */
function collapseUtf8ExpandedBytes(bytes) {
  const text = bytesToText(bytes);
  if (text === null || text.length === bytes.length) return null;
  const collapsed = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) return null;
    collapsed[i] = c;
  }
  return collapsed;
}

function parseJson(text, what) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Invalid("malformed", `${what} is not valid JSON (${e.message})`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Invalid("malformed", `${what} is not a JSON object`);
  }
  return value;
}

function unzipCertificate(zip) {
  let files;
  try {
    files = unzipSync(zip, { filter: (f) => f.name === "certificate.json" });
  } catch (e) {
    throw new Invalid("malformed", "the QR code's ZIP archive is damaged (" + e.message + ")");
  }
  const entry = files["certificate.json"];
  if (!entry) throw new Invalid("malformed", "the QR code's ZIP archive has no certificate.json");
  const text = bytesToText(entry);
  if (text === null) throw new Invalid("malformed", "certificate.json is not UTF-8 text");
  return text;
}

// ---------------------------------------------------------------------------------------------
// Linked-data credentials (DIVOC native and W3C VC 1.1 / 2.0)

/** Signature, issuer, validity period, then status; resolves to the result without `format`. */
async function verifyCredential(credential, trust, now) {
  const signed = await verifySignedDocument(credential, trust, "certificate");
  const issuer = issuerId(credential);
  let warning;
  if (issuer !== signed.key.controller) {
    if (signed.suite !== "Ed25519Signature2018") {
      throw new Invalid("issuer-mismatch", `the issuer ${issuer} is not the controller (${signed.key.controller}) of the signing key ${signed.key.id}`);
    }
    // DIVOC's own deployments sign with a key whose controller differs from `issuer`; DIVOC never
    // checked it. Accepting the key is the trust decision; the mismatch is shown, not fatal.
    warning = `the issuer ${issuer} is not the controller (${signed.key.controller}) of the signing key ${signed.key.id}`;
  }
  checkValidityPeriod(credential, now);

  const details = certificateDetails(credential);
  const status = await checkStatus(credential, issuer, trust, now);
  const result = { ...status, details };
  if (warning) result.warning = warning;
  return result;
}

/**
 * Verifies a document's single linked-data proof against the trusted keys.
 * Resolves to {key, suite}; throws Invalid with the reason otherwise.
 * `what` names the document in reasons ("certificate", "status list <url>").
 */
async function verifySignedDocument(doc, trust, what) {
  const proof = doc.proof;
  if (!proof || typeof proof !== "object") throw new Invalid("unsigned", `the ${what} has no proof`);
  if (Array.isArray(proof)) throw new Invalid("unsupported-proof", `the ${what} has ${proof.length} proofs; exactly one is supported`);
  const suite = proofSuite(proof);
  if (!suite) {
    const name = proof.type === "DataIntegrityProof" ? `DataIntegrityProof/${proof.cryptosuite}` : String(proof.type);
    throw new Invalid("unsupported-proof", `the ${what}'s proof type ${name} is not supported`);
  }
  if (proof.proofPurpose !== "assertionMethod") {
    throw new Invalid("wrong-proof-purpose", `the ${what}'s proof purpose is ${proof.proofPurpose}, expected assertionMethod`);
  }
  const key = findKey(trust, proof.verificationMethod, what);
  const { proof: _ignored, ...unsigned } = doc;
  const canonize = contextLoader(trust, what);

  if (suite === "Ed25519Signature2018") {
    const { headerB64, signature } = parseDetachedJws(proof.jws, what);
    const { jws: _jws, ...proofOptions } = proof;
    proofOptions["@context"] = doc["@context"];
    const verifyData = concatBytes(sha256(UTF8.encode(await canonize(proofOptions))), sha256(UTF8.encode(await canonize(unsigned))));
    const signingInput = concatBytes(UTF8.encode(headerB64 + "."), verifyData);
    if (!ed25519.verify(signature, signingInput, key.publicKey)) throw signatureMismatch(what);
  } else {
    // Ed25519Signature2020 and eddsa-rdfc-2022 hash and sign the same way; only the names differ.
    const signature = decodeProofValue(proof.proofValue, what);
    const { proofValue: _pv, ...proofConfig } = proof;
    proofConfig["@context"] = doc["@context"];
    const hashData = concatBytes(sha256(UTF8.encode(await canonize(proofConfig))), sha256(UTF8.encode(await canonize(unsigned))));
    if (!ed25519.verify(signature, hashData, key.publicKey)) throw signatureMismatch(what);
  }
  return { key, suite };
}

function signatureMismatch(what) {
  return new Invalid("signature-mismatch", `the ${what}'s signature does not match its content (altered or not signed by this key)`);
}

function proofSuite(proof) {
  if (proof.type === "Ed25519Signature2018") return "Ed25519Signature2018";
  if (proof.type === "Ed25519Signature2020") return "Ed25519Signature2020";
  if (proof.type === "DataIntegrityProof" && proof.cryptosuite === "eddsa-rdfc-2022") return "eddsa-rdfc-2022";
  return null;
}

/** The trusted key a proof names, with its 32 raw public key bytes. */
function findKey(trust, verificationMethod, what) {
  if (typeof verificationMethod !== "string" || verificationMethod === "") {
    throw new Invalid("unknown-key", `the ${what}'s proof names no verification method`);
  }
  const key = (Array.isArray(trust.keys) ? trust.keys : []).find((k) => k && k.id === verificationMethod);
  if (!key) throw new Invalid("unknown-key", `the ${what} is signed with an unknown key ${verificationMethod}`);
  return { id: key.id, controller: key.controller, publicKey: publicKeyBytes(key) };
}

const ED25519_MULTICODEC = [0xed, 0x01];

function publicKeyBytes(key) {
  let bytes;
  try {
    if (typeof key.publicKeyBase58 === "string") {
      bytes = base58.decode(key.publicKeyBase58);
    } else if (typeof key.publicKeyMultibase === "string" && key.publicKeyMultibase.startsWith("z")) {
      const decoded = base58.decode(key.publicKeyMultibase.slice(1));
      if (decoded.length === 34 && startsWith(decoded, ED25519_MULTICODEC)) bytes = decoded.slice(2);
    }
  } catch {
    bytes = undefined;
  }
  if (!bytes || bytes.length !== 32) throw new Invalid("bad-key", `the trusted key ${key.id} is not a 32-byte Ed25519 public key`);
  return bytes;
}

const DETACHED_JWS_HEADER = { alg: "EdDSA", b64: false, crit: ["b64"] };

/** `<b64url header>..<b64url signature>` with exactly DIVOC's (jsonld-signatures') header. */
function parseDetachedJws(jws, what) {
  const parts = typeof jws === "string" ? jws.split(".") : [];
  if (parts.length !== 3 || parts[1] !== "") throw new Invalid("malformed-proof", `the ${what}'s proof jws is not a detached JWS`);
  let header;
  try {
    header = JSON.parse(bytesToText(base64urlnopad.decode(parts[0])));
  } catch {
    throw new Invalid("malformed-proof", `the ${what}'s JWS header is not base64url JSON`);
  }
  if (JSON.stringify(header) !== JSON.stringify(DETACHED_JWS_HEADER)) {
    throw new Invalid("malformed-proof", `the ${what}'s JWS header is ${JSON.stringify(header)}, expected ${JSON.stringify(DETACHED_JWS_HEADER)}`);
  }
  let signature;
  try {
    signature = base64urlnopad.decode(parts[2]);
  } catch {
    throw new Invalid("malformed-proof", `the ${what}'s JWS signature is not base64url`);
  }
  if (signature.length !== 64) throw new Invalid("malformed-proof", `the ${what}'s JWS signature has ${signature.length} bytes, expected 64`);
  return { headerB64: parts[0], signature };
}

/** proofValue: multibase base58btc ("z...") of the 64-byte signature. */
function decodeProofValue(proofValue, what) {
  if (typeof proofValue !== "string" || !proofValue.startsWith("z")) {
    throw new Invalid("malformed-proof", `the ${what}'s proofValue is not multibase base58btc ("z...")`);
  }
  let signature;
  try {
    signature = base58.decode(proofValue.slice(1));
  } catch {
    throw new Invalid("malformed-proof", `the ${what}'s proofValue is not base58btc`);
  }
  if (signature.length !== 64) throw new Invalid("malformed-proof", `the ${what}'s signature has ${signature.length} bytes, expected 64`);
  return signature;
}

/**
 * A canonicalizer (URDNA2015 / RDFC-1.0 N-Quads) whose document loader serves only the trusted
 * contexts: nothing is ever fetched, and a document naming another context is refused.
 * Safe mode makes a term that no context defines an error instead of silently leaving it out of
 * what is signed.
 */
function contextLoader(trust, what) {
  const contexts = trust.contexts && typeof trust.contexts === "object" ? trust.contexts : {};
  const documentLoader = async (url) => {
    if (!Object.prototype.hasOwnProperty.call(contexts, url)) {
      throw new Invalid("unknown-context", `the ${what} uses the JSON-LD context ${url}, which is not among the trusted contexts`);
    }
    return { contextUrl: null, documentUrl: url, document: contexts[url] };
  };
  return async (doc) => {
    try {
      return await jsonld.canonize(doc, {
        format: "application/n-quads",
        documentLoader,
        safe: true,
        // RDFC-1.0 is the W3C name of URDNA2015 (same output). Hashing with @noble/hashes instead
        // of rdf-canonize's WebCrypto default keeps the page working outside secure contexts.
        canonizeOptions: { algorithm: "RDFC-1.0", createMessageDigest: () => new Sha256Digest() },
      });
    } catch (e) {
      const inner = findInvalid(e);
      if (inner) throw inner;
      throw new Invalid("not-canonicalizable", `the ${what} cannot be canonicalized: ${describeJsonLdError(e)}`);
    }
  };
}

/** rdf-canonize's MessageDigest interface: update(string), async digest() -> lowercase hex. */
class Sha256Digest {
  constructor() {
    this.hash = sha256.create();
  }

  update(text) {
    this.hash.update(UTF8.encode(text));
  }

  async digest() {
    return bytesToHex(this.hash.digest());
  }
}

/** jsonld.js wraps loader errors; dig out ours so its reason reaches the person. */
function findInvalid(e, depth = 0) {
  if (!e || depth > 5) return null;
  if (e instanceof Invalid) return e;
  return findInvalid(e.details && e.details.cause, depth + 1) || findInvalid(e.cause, depth + 1);
}

function describeJsonLdError(e) {
  const event = e && e.details && e.details.event;
  if (event && event.details && event.details.property) {
    return `the property "${event.details.property}" is not defined by its contexts`;
  }
  if (event && event.details && event.details.type) return `the type "${event.details.type}" is not defined by its contexts`;
  return (e && e.message) || String(e);
}

function issuerId(credential) {
  const issuer = credential.issuer;
  if (typeof issuer === "string") return issuer;
  if (issuer && typeof issuer === "object" && typeof issuer.id === "string") return issuer.id;
  throw new Invalid("malformed", "the certificate names no issuer");
}

/** validFrom / validUntil (VC 2.0) and expirationDate (VC 1.1), when present. */
function checkValidityPeriod(credential, now) {
  const until = credential.validUntil || credential.expirationDate;
  if (until !== undefined) {
    const t = Date.parse(until);
    if (Number.isNaN(t)) throw new Invalid("malformed", `the certificate's expiry ${until} is not a date`);
    if (t < now.getTime()) throw new Invalid("expired", `the certificate expired on ${until}`);
  }
  if (credential.validFrom !== undefined) {
    const t = Date.parse(credential.validFrom);
    if (Number.isNaN(t)) throw new Invalid("malformed", `the certificate's validFrom ${credential.validFrom} is not a date`);
    if (t > now.getTime()) throw new Invalid("not-yet-valid", `the certificate is valid only from ${credential.validFrom}`);
  }
}

/** What the page shows a verifier; never sent anywhere. */
function certificateDetails(credential) {
  const subject = firstOf(credential.credentialSubject) || {};
  const evidence = firstOf(credential.evidence) || {};
  return compact({
    name: subject.name,
    certificateId: evidence.certificateId,
    vaccine: evidence.vaccine,
    dose: evidence.dose,
    totalDoses: evidence.totalDoses,
    date: evidence.date,
    issuer: issuerId(credential),
    issuedAt: credential.issuanceDate || credential.validFrom,
  });
}

// ---------------------------------------------------------------------------------------------
// Status: W3C Bitstring Status List, checked offline against the cached, signed lists

const STATUS_PURPOSES = ["revocation", "suspension"];

async function checkStatus(credential, issuer, trust, now) {
  const status = credential.credentialStatus;
  if (status === undefined) {
    return { outcome: "VALID", code: "no-status", note: "the certificate carries no status entry: it cannot be revoked or suspended" };
  }
  const entries = Array.isArray(status) ? status : [status];
  if (entries.length === 0) {
    return { outcome: "VALID", code: "no-status", note: "the certificate carries no status entry: it cannot be revoked or suspended" };
  }
  const today = now.toISOString().slice(0, 10); // UTC date, like the dates in suspendedUntil
  let revoked = false;
  let suspension = null; // {until?} when suspended
  for (const entry of entries) {
    const { purpose, index, listUrl } = parseStatusEntry(entry);
    const list = await loadStatusList(listUrl, purpose, issuer, trust);
    if (!bitIsSet(list.bits, index, listUrl)) continue;
    if (purpose === "revocation") {
      revoked = true;
    } else {
      const until = suspensionEnd(list.subject, index);
      if (until && until < today) continue; // the suspension's last day has passed
      suspension = until ? { until } : {};
    }
  }
  if (revoked) return { outcome: "REVOKED", code: "revoked", reason: "the issuer has revoked this certificate" };
  if (suspension) {
    const result = { outcome: "SUSPENDED", code: "suspended", reason: "the issuer has suspended this certificate" };
    if (suspension.until) {
      result.until = suspension.until;
      result.reason += " until " + suspension.until;
    }
    return result;
  }
  return { outcome: "VALID", code: "status-checked" };
}

function parseStatusEntry(entry) {
  if (!entry || typeof entry !== "object") throw new Invalid("malformed-status", "a credentialStatus entry is not an object");
  if (entry.type !== "BitstringStatusListEntry") {
    throw new Invalid("unsupported-status", `the status entry type ${entry.type} cannot be checked here`);
  }
  if (!STATUS_PURPOSES.includes(entry.statusPurpose)) {
    throw new Invalid("unsupported-status", `the status purpose ${entry.statusPurpose} cannot be checked here`);
  }
  if (entry.statusSize !== undefined && Number(entry.statusSize) !== 1) {
    throw new Invalid("unsupported-status", `status entries of ${entry.statusSize} bits cannot be checked here`);
  }
  if (typeof entry.statusListIndex !== "string" || !/^(0|[1-9][0-9]{0,14})$/.test(entry.statusListIndex)) {
    throw new Invalid("malformed-status", `the status list index ${JSON.stringify(entry.statusListIndex)} is not a decimal string`);
  }
  if (typeof entry.statusListCredential !== "string" || entry.statusListCredential === "") {
    throw new Invalid("malformed-status", "a status entry names no status list");
  }
  return { purpose: entry.statusPurpose, index: Number(entry.statusListIndex), listUrl: entry.statusListCredential };
}

/**
 * The status list credential for `listUrl` from the cached trust, after checking its proof, that
 * the certificate's issuer signed it, that it is the list at that URL and for that purpose.
 * Resolves to {bits, subject}.
 */
async function loadStatusList(listUrl, purpose, certificateIssuer, trust) {
  const lists = trust.statusLists && typeof trust.statusLists === "object" ? trust.statusLists : {};
  const list = Object.prototype.hasOwnProperty.call(lists, listUrl) ? lists[listUrl] : undefined;
  // A verifier must not accept what it cannot check.
  if (!list || typeof list !== "object") throw new Invalid("status-list-unavailable", `status list ${listUrl} not available`);
  const what = `status list ${listUrl}`;
  const { key } = await verifySignedDocument(list, trust, what);
  const listIssuer = issuerIdOf(list, what);
  if (listIssuer !== key.controller) {
    throw new Invalid("status-list-untrusted", `the ${what} is issued by ${listIssuer}, which does not control its signing key ${key.id}`);
  }
  if (listIssuer !== certificateIssuer) {
    throw new Invalid("status-list-untrusted", `the ${what} is issued by ${listIssuer}, not by the certificate's issuer ${certificateIssuer}`);
  }
  if (list.id !== listUrl) {
    throw new Invalid("status-list-mismatch", `the list cached for ${listUrl} is the list ${list.id}`);
  }
  const types = [].concat(list.type || []);
  const subject = firstOf(list.credentialSubject);
  if (!types.includes("BitstringStatusListCredential") || !subject || subject.type !== "BitstringStatusList") {
    throw new Invalid("malformed-status", `the ${what} is not a BitstringStatusListCredential`);
  }
  if (subject.statusPurpose !== purpose) {
    throw new Invalid("status-list-mismatch", `the ${what} records ${subject.statusPurpose}, but the certificate points to it for ${purpose}`);
  }
  return { bits: decodeEncodedList(subject.encodedList, what), subject };
}

function issuerIdOf(doc, what) {
  const issuer = doc.issuer;
  if (typeof issuer === "string") return issuer;
  if (issuer && typeof issuer === "object" && typeof issuer.id === "string") return issuer.id;
  throw new Invalid("malformed-status", `the ${what} names no issuer`);
}

/** encodedList = "u" + base64url-no-padding(GZIP(bitstring)). */
function decodeEncodedList(encodedList, what) {
  if (typeof encodedList !== "string" || !encodedList.startsWith("u")) {
    throw new Invalid("malformed-status", `the ${what}'s encodedList is not multibase base64url ("u...")`);
  }
  try {
    return gunzipSync(base64urlnopad.decode(encodedList.slice(1)));
  } catch (e) {
    throw new Invalid("malformed-status", `the ${what}'s encodedList is not base64url of GZIP data (${e.message})`);
  }
}

/** Bit `index`, counted from the most significant bit of the first byte (index 0 = left-most). */
function bitIsSet(bits, index, listUrl) {
  const byte = Math.floor(index / 8);
  if (byte >= bits.length) {
    throw new Invalid("malformed-status", `the status index ${index} is beyond the end of status list ${listUrl} (${bits.length * 8} entries)`);
  }
  return ((bits[byte] >> (7 - (index % 8))) & 1) === 1;
}

/** The last day of index's suspension from `suspendedUntil: [{index, until}]`, if one is given. */
function suspensionEnd(subject, index) {
  const ends = Array.isArray(subject.suspendedUntil) ? subject.suspendedUntil : [];
  let latest = null;
  for (const end of ends) {
    if (!end || String(end.index) !== String(index)) continue;
    // A malformed date cannot end a suspension: treat it as open-ended.
    if (typeof end.until !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(end.until)) return null;
    if (latest === null || end.until > latest) latest = end.until;
  }
  return latest;
}
