// Just enough DER to use an X.509 document signer certificate of an EU DCC: its EC P-256 public
// key and its extended key usages. The certificate itself is trusted because the server put it in
// trust.dsc; its own signature chain is not checked here.

import { base64 } from "@scure/base";

const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
const OID_P256 = "1.2.840.10045.3.1.7";
const OID_EXTENDED_KEY_USAGE = "2.5.29.37";

export class DerError extends Error {}

/** PEM ("-----BEGIN CERTIFICATE-----...") or bare base64 -> DER bytes. */
export function pemToDer(pem) {
  const body = String(pem).replace(/-----(BEGIN|END) CERTIFICATE-----/g, "").replace(/\s+/g, "");
  try {
    return base64.decode(body);
  } catch {
    throw new DerError("the certificate is not PEM or base64");
  }
}

/** One TLV at `offset`: {tag, start (of the value), end, next}. */
function readTlv(bytes, offset) {
  if (offset + 2 > bytes.length) throw new DerError("DER ends too early");
  const tag = bytes[offset];
  let length = bytes[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > bytes.length) throw new DerError("bad DER length");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[start + i];
    start += count;
  }
  const end = start + length;
  if (end > bytes.length) throw new DerError("DER ends too early");
  return { tag, start, end, next: end };
}

function children(bytes, tlv) {
  const out = [];
  for (let offset = tlv.start; offset < tlv.end;) {
    const child = readTlv(bytes, offset);
    out.push(child);
    offset = child.next;
  }
  return out;
}

function oid(bytes, tlv) {
  if (tlv.tag !== 0x06) throw new DerError("expected an OID");
  const parts = [];
  let value = 0;
  for (let i = tlv.start; i < tlv.end; i++) {
    value = value * 128 + (bytes[i] & 0x7f);
    if (!(bytes[i] & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  const first = parts.shift();
  return [Math.min(2, Math.floor(first / 40)), first - 40 * Math.min(2, Math.floor(first / 40)), ...parts].join(".");
}

/**
 * {publicKey: 65-byte uncompressed P-256 point | null (another key type), keyType,
 *  extendedKeyUsages: [OID]} of a DER certificate.
 */
export function parseCertificate(der) {
  const certificate = readTlv(der, 0);
  if (certificate.tag !== 0x30 || certificate.end !== der.length) throw new DerError("not a DER certificate");
  const tbs = children(der, certificate)[0];
  const fields = children(der, tbs);
  let i = fields[0] && fields[0].tag === 0xa0 ? 1 : 0; // [0] version
  i += 5; // serialNumber, signature, issuer, validity, subject
  const spki = fields[i];
  if (!spki || spki.tag !== 0x30) throw new DerError("certificate has no public key");
  const [algorithm, bitString] = children(der, spki);
  const [keyOid, params] = children(der, algorithm);
  const keyType = oid(der, keyOid);
  let publicKey = null;
  if (keyType === OID_EC_PUBLIC_KEY && params && params.tag === 0x06 && oid(der, params) === OID_P256) {
    // BIT STRING: one byte of unused bits (0), then the point.
    publicKey = der.slice(bitString.start + 1, bitString.end);
  }
  const extendedKeyUsages = [];
  const extensions = fields.find((f) => f.tag === 0xa3);
  if (extensions) {
    for (const extension of children(der, children(der, extensions)[0])) {
      const parts = children(der, extension);
      if (oid(der, parts[0]) !== OID_EXTENDED_KEY_USAGE) continue;
      const value = parts[parts.length - 1]; // OCTET STRING holding SEQUENCE OF OID
      for (const usage of children(der, readTlv(der, value.start))) extendedKeyUsages.push(oid(der, usage));
    }
  }
  return { publicKey, keyType, extendedKeyUsages };
}
