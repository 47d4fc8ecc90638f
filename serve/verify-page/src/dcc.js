// EU Digital COVID Certificates: "HC1:" + Base45(zlib(COSE_Sign1(CWT))).
// Verified: ES256 signature with a document signer certificate from trust.dsc (PEM), found by
// kid = the first 8 bytes of SHA-256(DER) (protected header first, as the EU specification says;
// unprotected only when the protected header has none); the CWT's issued-at and expiry against
// the clock; that it holds exactly one vaccination, test or recovery entry; the certificate's
// extended key usages (when it restricts them) allow that entry's type.
// Not verified: RSA (PS256) signatures, the DSC's chain to a country signing CA, EU revocation lists.

import { p256 } from "@noble/curves/nist.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { unzlibSync } from "fflate";
import { CborError, Tagged, cborToJson, decodeCbor, encodeArrayOfStrings } from "./cbor.js";
import { DerError, parseCertificate, pemToDer } from "./x509.js";
import { Invalid, compact } from "./common.js";

const BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
const COSE_SIGN1_TAG = 18;
const CWT_TAG = 61;
const HEADER_ALG = 1;
const HEADER_KID = 4;
const ALG_ES256 = -7;
const ALG_NAMES = { [-7]: "ES256", [-37]: "PS256", [-35]: "ES384", [-36]: "ES512" };
const CLAIM_ISS = 1;
const CLAIM_EXP = 4;
const CLAIM_IAT = 6;
const CLAIM_HCERT = -260;
const MAX_INFLATED = 1 << 20;

// Extended key usages a DSC may carry to limit what it signs (both OID arcs are in use).
const USAGE_BY_ENTRY = {
  t: ["1.3.6.1.4.1.1847.2021.1.1", "1.3.6.1.4.1.0.1847.2021.1.1"],
  v: ["1.3.6.1.4.1.1847.2021.1.2", "1.3.6.1.4.1.0.1847.2021.1.2"],
  r: ["1.3.6.1.4.1.1847.2021.1.3", "1.3.6.1.4.1.0.1847.2021.1.3"],
};
const DCC_USAGES = Object.values(USAGE_BY_ENTRY).flat();

/** Verifies an HC1: text; resolves to the result without `format`. */
export async function verifyEuDcc(text, trust, now) {
  const compressed = base45Decode(text.slice(4));
  const cose = inflate(compressed);
  const { protectedBytes, protectedHeader, unprotectedHeader, payloadBytes, signature } = parseCoseSign1(cose);

  // The algorithm belongs in the protected header; some issuers put it in the unprotected one.
  const alg = protectedHeader.has(HEADER_ALG) ? protectedHeader.get(HEADER_ALG) : unprotectedHeader.get(HEADER_ALG);
  if (alg !== ALG_ES256) {
    throw new Invalid("unsupported-proof", `the certificate is signed with ${ALG_NAMES[alg] || "algorithm " + alg}; only ES256 is verified here`);
  }
  const kid = protectedHeader.has(HEADER_KID) ? protectedHeader.get(HEADER_KID) : unprotectedHeader.get(HEADER_KID);
  if (!(kid instanceof Uint8Array)) throw new Invalid("unknown-key", "the certificate names no signing key (kid)");
  const signer = findSigner(trust, kid);

  const signed = encodeArrayOfStrings(["Signature1", protectedBytes, new Uint8Array(0), payloadBytes]);
  let ok = false;
  try {
    ok = signature.length === 64 && p256.verify(signature, signed, signer.publicKey, { prehash: true, lowS: false });
  } catch {
    ok = false;
  }
  if (!ok) throw new Invalid("signature-mismatch", "the certificate's signature does not match its content (altered or not signed by this key)");

  const claims = decodeOrInvalid(payloadBytes, "CWT payload");
  if (!(claims instanceof Map)) throw new Invalid("malformed", "the CWT payload is not a map");
  const hcert = claims.get(CLAIM_HCERT);
  const certificate = hcert instanceof Map ? hcert.get(1) : undefined;
  if (!(certificate instanceof Map)) throw new Invalid("malformed", "the CWT holds no EU DCC (claim -260 / 1)");
  const dcc = cborToJson(certificate);

  checkTimes(claims, now);
  const entryType = singleEntryType(dcc);
  const restricted = signer.extendedKeyUsages.filter((u) => DCC_USAGES.includes(u));
  if (restricted.length > 0 && !restricted.some((u) => USAGE_BY_ENTRY[entryType].includes(u))) {
    throw new Invalid("key-usage", `the signing certificate may not sign ${ENTRY_NAMES[entryType]} certificates`);
  }
  return {
    outcome: "VALID",
    code: "no-status",
    note: "EU DCC revocation lists are not checked here",
    details: dccDetails(dcc, entryType, claims),
  };
}

const ENTRY_NAMES = { v: "vaccination", t: "test", r: "recovery" };

function base45Decode(text) {
  const values = [];
  for (const c of text) {
    const v = BASE45.indexOf(c);
    if (v < 0) throw new Invalid("malformed", `the HC1 text has a character outside Base45: ${JSON.stringify(c)}`);
    values.push(v);
  }
  if (values.length % 3 === 1) throw new Invalid("malformed", "the HC1 text has a Base45 length that cannot be decoded");
  const out = [];
  for (let i = 0; i < values.length; i += 3) {
    if (i + 2 < values.length) {
      const n = values[i] + values[i + 1] * 45 + values[i + 2] * 45 * 45;
      if (n > 0xffff) throw new Invalid("malformed", "the HC1 text has an invalid Base45 triple");
      out.push(n >> 8, n & 0xff);
    } else {
      const n = values[i] + values[i + 1] * 45;
      if (n > 0xff) throw new Invalid("malformed", "the HC1 text has an invalid Base45 pair");
      out.push(n);
    }
  }
  return Uint8Array.from(out);
}

/** zlib-compressed as the specification says; some issuers skip compression (CBOR tag or array first). */
function inflate(bytes) {
  if (bytes.length > 0 && (bytes[0] & 0x0f) === 8 && ((bytes[0] << 8) | bytes[1]) % 31 === 0) {
    let out;
    try {
      out = unzlibSync(bytes);
    } catch (e) {
      throw new Invalid("malformed", `the HC1 data is not valid zlib (${e.message})`);
    }
    if (out.length > MAX_INFLATED) throw new Invalid("malformed", "the HC1 data inflates too large");
    return out;
  }
  // Uncompressed: must start like a COSE message (tag 18, tag 61 or an array of 4).
  if (bytes[0] === 0xd2 || bytes[0] === 0xd8 || bytes[0] === 0x84) return bytes;
  throw new Invalid("malformed", "the HC1 data is neither zlib-compressed nor a COSE message");
}

function decodeOrInvalid(bytes, what) {
  try {
    return decodeCbor(bytes);
  } catch (e) {
    if (e instanceof CborError) throw new Invalid("malformed", `the ${what} is not valid CBOR (${e.message})`);
    throw e;
  }
}

function parseCoseSign1(bytes) {
  let value = decodeOrInvalid(bytes, "COSE message");
  // Tags are optional: CWT (61) around COSE_Sign1 (18), either or both.
  if (value instanceof Tagged && value.tag === CWT_TAG) value = value.value;
  if (value instanceof Tagged && value.tag === COSE_SIGN1_TAG) value = value.value;
  if (value instanceof Tagged) throw new Invalid("malformed", `the COSE message has tag ${value.tag}, expected COSE_Sign1 (18)`);
  if (!Array.isArray(value) || value.length !== 4) throw new Invalid("malformed", "the COSE message is not a COSE_Sign1 array of 4");
  const [protectedBytes, unprotectedHeader, payloadBytes, signature] = value;
  if (!(protectedBytes instanceof Uint8Array) || !(unprotectedHeader instanceof Map) ||
      !(payloadBytes instanceof Uint8Array) || !(signature instanceof Uint8Array)) {
    throw new Invalid("malformed", "the COSE_Sign1 members have the wrong types");
  }
  const protectedHeader = protectedBytes.length === 0 ? new Map() : decodeOrInvalid(protectedBytes, "COSE protected header");
  if (!(protectedHeader instanceof Map)) throw new Invalid("malformed", "the COSE protected header is not a map");
  return { protectedBytes, protectedHeader, unprotectedHeader, payloadBytes, signature };
}

/** The trusted document signer certificate whose SHA-256 starts with kid. */
function findSigner(trust, kid) {
  const certificates = Array.isArray(trust.dsc) ? trust.dsc : [];
  const kidHex = [...kid].map((b) => b.toString(16).padStart(2, "0")).join("");
  for (const pem of certificates) {
    let der;
    try {
      der = pemToDer(pem);
    } catch {
      continue; // a malformed entry cannot be the signer
    }
    const digest = sha256(der);
    if (kid.length === 0 || kid.length > 8 || !kid.every((b, i) => digest[i] === b)) continue;
    let parsed;
    try {
      parsed = parseCertificate(der);
    } catch (e) {
      if (e instanceof DerError) throw new Invalid("bad-key", `the trusted certificate for kid ${kidHex} cannot be read (${e.message})`);
      throw e;
    }
    if (!parsed.publicKey) throw new Invalid("unsupported-proof", `the trusted certificate for kid ${kidHex} has no EC P-256 key`);
    return parsed;
  }
  throw new Invalid("unknown-key", `the certificate is signed with an unknown key (kid ${kidHex})`);
}

function checkTimes(claims, now) {
  const seconds = now.getTime() / 1000;
  const iat = claims.get(CLAIM_IAT);
  const exp = claims.get(CLAIM_EXP);
  if (typeof iat === "number" && iat > seconds) {
    throw new Invalid("not-yet-valid", `the certificate was issued in the future (${new Date(iat * 1000).toISOString()})`);
  }
  if (typeof exp === "number" && exp < seconds) {
    throw new Invalid("expired", `the certificate expired on ${new Date(exp * 1000).toISOString()}`);
  }
}

/** "v", "t" or "r": a DCC holds exactly one entry of exactly one of these. */
function singleEntryType(dcc) {
  const present = ["v", "t", "r"].filter((k) => dcc[k] !== undefined);
  if (present.length !== 1) throw new Invalid("malformed", "the EU DCC must hold exactly one of vaccination, test or recovery");
  const entries = dcc[present[0]];
  if (!Array.isArray(entries) || entries.length !== 1) {
    throw new Invalid("malformed", `the EU DCC must hold exactly one ${ENTRY_NAMES[present[0]]} entry`);
  }
  return present[0];
}

function dccDetails(dcc, entryType, claims) {
  const entry = dcc[entryType][0] || {};
  const name = dcc.nam || {};
  const iat = claims.get(CLAIM_IAT);
  const details = {
    name: [name.gn, name.fn].filter(Boolean).join(" ") || [name.gnt, name.fnt].filter(Boolean).join(" "),
    certificateId: entry.ci,
    issuer: entry.is || claims.get(CLAIM_ISS),
    issuedAt: typeof iat === "number" ? new Date(iat * 1000).toISOString() : undefined,
  };
  if (entryType === "v") {
    Object.assign(details, { vaccine: entry.mp, dose: entry.dn, totalDoses: entry.sd, date: entry.dt });
  } else if (entryType === "t") {
    Object.assign(details, { vaccine: "test " + (entry.tt || ""), date: entry.sc });
  } else {
    Object.assign(details, { vaccine: "recovery", date: entry.fr });
  }
  return compact(details);
}
