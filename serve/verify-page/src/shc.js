// SMART Health Cards: "shc:/<digits>" (a scanned QR), a bare compact JWS, or a pasted
// .smart-health-card file {"verifiableCredential": [JWS, ...]}.
// JWS header {"zip":"DEF","alg":"ES256","kid"}; payload raw DEFLATE of {iss, nbf, vc}; signature
// raw r||s over ASCII(header.payload) with the issuer's P-256 key, looked up in
// trust.jwks = {"<iss>": {"keys": [JWK, ...]}} by iss and kid.
// These cards carry no status entry: they are VALID or INVALID, never REVOKED or SUSPENDED here.

import { p256 } from "@noble/curves/nist.js";
import { base64urlnopad } from "@scure/base";
import { inflateSync } from "fflate";
import { Invalid, bytesToText, compact } from "./common.js";

const HEALTH_CARD_TYPE = "https://smarthealth.cards#health-card";
const MAX_JWS = 64 * 1024;
const MAX_INFLATED = 1 << 20; // real cards are a few kB
const UTF8 = new TextEncoder();

/** Verifies the text of an SHC; resolves to the result without `format`. */
export async function verifySmartHealthCard(text, trust, now) {
  const jwsList = jwsOf(text);
  const cards = jwsList.map((jws) => verifyJws(jws, trust, now));
  const first = cards[0];
  const result = {
    outcome: "VALID",
    code: "no-status",
    note: "SMART Health Cards carry no status entry: revocation and suspension are not checked",
    details: first.details,
  };
  if (cards.length > 1) result.note += `; all ${cards.length} cards of the file verified, the first is shown`;
  return result;
}

/** The compact JWS(es) in an shc:/ QR text, a bare JWS or a .smart-health-card file. */
function jwsOf(text) {
  if (/^shc:\//i.test(text)) return [jwsFromNumeric(text)];
  if (text.startsWith("{")) {
    let file;
    try {
      file = JSON.parse(text);
    } catch (e) {
      throw new Invalid("malformed", `not a .smart-health-card file (${e.message})`);
    }
    if (!Array.isArray(file.verifiableCredential) || file.verifiableCredential.length === 0) {
      throw new Invalid("malformed", "the .smart-health-card file has no verifiableCredential");
    }
    return file.verifiableCredential.map(String);
  }
  return [text];
}

/** "shc:/" + two digits per JWS character (value + 45). Multi-part (chunked) QR sets are not read. */
function jwsFromNumeric(text) {
  const digits = text.slice(5);
  if (/^\d+\/\d+\//.test(digits)) throw new Invalid("unsupported-format", "multi-part SMART Health Card QR codes are not supported");
  if (!/^(\d\d)+$/.test(digits)) throw new Invalid("malformed", "shc:/ must be followed by an even number of digits");
  let jws = "";
  for (let i = 0; i < digits.length; i += 2) {
    const value = Number(digits.slice(i, i + 2));
    if (value > 77) throw new Invalid("malformed", `shc:/ digit pair ${digits.slice(i, i + 2)} is out of range`);
    jws += String.fromCharCode(value + 45);
  }
  return jws;
}

function decodeB64url(part, what) {
  try {
    return base64urlnopad.decode(part);
  } catch {
    throw new Invalid("malformed", `the card's ${what} is not base64url`);
  }
}

function verifyJws(jwsText, trust, now) {
  const jws = jwsText.replace(/^\uFEFF/, "").trim();
  // A card must fit a QR code (a file may hold several); bounding the JWS bounds the inflated size.
  if (jws.length > MAX_JWS) throw new Invalid("malformed", `the card's JWS has ${jws.length} characters, over the ${MAX_JWS} limit`);
  const parts = jws.split(".");
  if (parts.length !== 3) throw new Invalid("malformed", "not a compact JWS (expected header.payload.signature)");
  const [headerB64, payloadB64, signatureB64] = parts;
  let header;
  try {
    header = JSON.parse(bytesToText(decodeB64url(headerB64, "header")));
  } catch (e) {
    if (e instanceof Invalid) throw e;
    throw new Invalid("malformed", "the card's JWS header is not JSON");
  }
  if (header.alg !== "ES256") throw new Invalid("unsupported-proof", `the card's alg is ${header.alg}; SMART Health Cards use ES256`);
  if (header.zip !== "DEF") throw new Invalid("malformed", `the card's zip is ${JSON.stringify(header.zip)}; SMART Health Cards require "DEF" (raw DEFLATE)`);

  // The payload names the issuer whose keys to use; it is trusted only once the signature checks.
  let inflated;
  try {
    inflated = inflateSync(decodeB64url(payloadB64, "payload"));
  } catch (e) {
    if (e instanceof Invalid) throw e;
    throw new Invalid("malformed", `the card's payload is not raw DEFLATE data (${e.message})`);
  }
  if (inflated.length > MAX_INFLATED) throw new Invalid("malformed", "the card's payload is too large");
  let payload;
  try {
    payload = JSON.parse(bytesToText(inflated));
  } catch {
    throw new Invalid("malformed", "the card's payload is not JSON");
  }
  if (!payload || typeof payload.iss !== "string") throw new Invalid("malformed", "the card names no issuer (iss)");

  const key = findJwk(trust, payload.iss, header.kid);
  const signature = decodeB64url(signatureB64, "signature");
  if (signature.length !== 64) {
    const der = signature[0] === 0x30 ? " (it looks DER-encoded)" : "";
    throw new Invalid("malformed-proof", `the card's signature has ${signature.length} bytes${der}; ES256 requires 64 bytes r||s`);
  }
  let ok = false;
  try {
    ok = p256.verify(signature, UTF8.encode(headerB64 + "." + payloadB64), key, { prehash: true, lowS: false });
  } catch {
    ok = false;
  }
  if (!ok) throw new Invalid("signature-mismatch", "the card's signature does not match its content (altered or not signed by this key)");

  checkPayload(payload, now);
  return { details: cardDetails(payload) };
}

/** The issuer's P-256 key with this kid, as an uncompressed point. */
function findJwk(trust, iss, kid) {
  const sets = trust.jwks && typeof trust.jwks === "object" ? trust.jwks : {};
  const set = sets[iss] || sets[iss.replace(/\/+$/, "")] || sets[iss.replace(/\/*$/, "/")];
  if (!set || !Array.isArray(set.keys)) throw new Invalid("unknown-issuer", `the card's issuer ${iss} is not a trusted SMART Health Card issuer`);
  const jwk = set.keys.find((k) => k && k.kid === kid);
  if (!jwk) throw new Invalid("unknown-key", `the card is signed with an unknown key ${kid} of ${iss}`);
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string") {
    throw new Invalid("bad-key", `the trusted key ${kid} is not an EC P-256 key`);
  }
  let x;
  let y;
  try {
    x = base64urlnopad.decode(jwk.x);
    y = base64urlnopad.decode(jwk.y);
  } catch {
    throw new Invalid("bad-key", `the trusted key ${kid} has malformed coordinates`);
  }
  if (x.length !== 32 || y.length !== 32) throw new Invalid("bad-key", `the trusted key ${kid} has malformed coordinates`);
  const point = new Uint8Array(65);
  point[0] = 0x04;
  point.set(x, 1);
  point.set(y, 33);
  return point;
}

function checkPayload(payload, now) {
  const vc = payload.vc;
  if (!vc || !Array.isArray(vc.type) || !vc.type.includes(HEALTH_CARD_TYPE)) {
    throw new Invalid("malformed", `the card's vc.type does not include ${HEALTH_CARD_TYPE}`);
  }
  const bundle = vc.credentialSubject && vc.credentialSubject.fhirBundle;
  if (!bundle || bundle.resourceType !== "Bundle") throw new Invalid("malformed", "the card holds no FHIR bundle");
  if (typeof payload.nbf === "number" && payload.nbf * 1000 > now.getTime()) {
    throw new Invalid("not-yet-valid", `the card is valid only from ${new Date(payload.nbf * 1000).toISOString()}`);
  }
  if (typeof payload.exp === "number" && payload.exp * 1000 < now.getTime()) {
    throw new Invalid("expired", `the card expired on ${new Date(payload.exp * 1000).toISOString()}`);
  }
}

function cardDetails(payload) {
  const resources = (payload.vc.credentialSubject.fhirBundle.entry || []).map((e) => e && e.resource).filter(Boolean);
  const patient = resources.find((r) => r.resourceType === "Patient") || {};
  const name = (patient.name || [])[0] || {};
  const immunizations = resources.filter((r) => r.resourceType === "Immunization");
  const last = immunizations[immunizations.length - 1] || {};
  const coding = ((last.vaccineCode || {}).coding || [])[0] || {};
  const identifier = ((last.identifier || [])[0] || {}).value;
  return compact({
    name: [...(name.given || []), name.family].filter(Boolean).join(" ") || name.text,
    certificateId: identifier,
    vaccine: coding.display || (coding.code ? `${coding.code} (${coding.system || "code"})` : undefined),
    dose: immunizations.length || undefined,
    date: last.occurrenceDateTime,
    issuer: payload.iss,
    issuedAt: typeof payload.nbf === "number" ? new Date(payload.nbf * 1000).toISOString() : undefined,
  });
}
