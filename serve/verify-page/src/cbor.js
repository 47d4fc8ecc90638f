// The small part of CBOR (RFC 8949) that an EU DCC needs: decoding a COSE_Sign1 and its CWT
// payload, and encoding the Sig_structure that was signed. Strict: truncated data, trailing
// bytes, invalid UTF-8 and reserved encodings are errors. Maps decode to JS Map (keys may be
// integers); tags decode to {tag, value}.

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });
const MAX_DEPTH = 32;

export class CborError extends Error {}

export class Tagged {
  constructor(tag, value) {
    this.tag = tag;
    this.value = value;
  }
}

/** Decodes exactly one CBOR item that fills all of `bytes`. */
export function decodeCbor(bytes) {
  const reader = { bytes, offset: 0 };
  const value = readItem(reader, 0);
  if (reader.offset !== bytes.length) throw new CborError(`${bytes.length - reader.offset} bytes after the CBOR item`);
  return value;
}

function take(reader, n) {
  if (reader.offset + n > reader.bytes.length) throw new CborError("CBOR data ends too early");
  const out = reader.bytes.subarray(reader.offset, reader.offset + n);
  reader.offset += n;
  return out;
}

/** The argument of an initial byte: a length, count or value (null for indefinite length). */
function readArgument(reader, info) {
  if (info < 24) return info;
  if (info === 24) return take(reader, 1)[0];
  if (info === 25) {
    const b = take(reader, 2);
    return (b[0] << 8) | b[1];
  }
  if (info === 26) {
    const b = take(reader, 4);
    return ((b[0] << 24) >>> 0) + ((b[1] << 16) | (b[2] << 8) | b[3]);
  }
  if (info === 27) {
    const b = take(reader, 8);
    const high = ((b[0] << 24) >>> 0) + ((b[1] << 16) | (b[2] << 8) | b[3]);
    const low = ((b[4] << 24) >>> 0) + ((b[5] << 16) | (b[6] << 8) | b[7]);
    const value = high * 2 ** 32 + low;
    if (!Number.isSafeInteger(value)) throw new CborError("CBOR integer too large");
    return value;
  }
  if (info === 31) return null;
  throw new CborError(`reserved CBOR additional information ${info}`);
}

function readItem(reader, depth) {
  if (depth > MAX_DEPTH) throw new CborError("CBOR nested too deeply");
  const initial = take(reader, 1)[0];
  const major = initial >> 5;
  const info = initial & 0x1f;
  if (major === 7) return readSimple(reader, info);
  const argument = readArgument(reader, info);
  switch (major) {
    case 0:
      if (argument === null) throw new CborError("indefinite-length integer");
      return argument;
    case 1:
      if (argument === null) throw new CborError("indefinite-length integer");
      return -1 - argument;
    case 2:
    case 3: {
      const bytes = argument === null ? readChunks(reader, major, depth) : take(reader, argument).slice();
      if (major === 2) return bytes;
      try {
        return STRICT_UTF8.decode(bytes);
      } catch {
        throw new CborError("CBOR text string is not UTF-8");
      }
    }
    case 4: {
      const items = [];
      if (argument === null) {
        while (!atBreak(reader)) items.push(readItem(reader, depth + 1));
      } else {
        for (let i = 0; i < argument; i++) items.push(readItem(reader, depth + 1));
      }
      return items;
    }
    case 5: {
      const map = new Map();
      const readPair = () => {
        const key = readItem(reader, depth + 1);
        if (map.has(key)) throw new CborError(`duplicate CBOR map key ${String(key)}`);
        map.set(key, readItem(reader, depth + 1));
      };
      if (argument === null) {
        while (!atBreak(reader)) readPair();
      } else {
        for (let i = 0; i < argument; i++) readPair();
      }
      return map;
    }
    case 6:
      if (argument === null) throw new CborError("indefinite-length tag");
      return new Tagged(argument, readItem(reader, depth + 1));
    default:
      throw new CborError(`CBOR major type ${major}`);
  }
}

function atBreak(reader) {
  if (reader.offset >= reader.bytes.length) throw new CborError("CBOR data ends inside an indefinite-length item");
  if (reader.bytes[reader.offset] === 0xff) {
    reader.offset += 1;
    return true;
  }
  return false;
}

function readChunks(reader, major, depth) {
  const chunks = [];
  while (!atBreak(reader)) {
    const initial = reader.bytes[reader.offset];
    if (initial >> 5 !== major || (initial & 0x1f) === 31) throw new CborError("bad chunk in an indefinite-length string");
    const chunk = readItem(reader, depth + 1);
    chunks.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

function readSimple(reader, info) {
  if (info === 20) return false;
  if (info === 21) return true;
  if (info === 22) return null;
  if (info === 23) return undefined;
  if (info === 25) return halfToNumber(take(reader, 2));
  if (info === 26) return new DataView(take(reader, 4).slice().buffer).getFloat32(0);
  if (info === 27) return new DataView(take(reader, 8).slice().buffer).getFloat64(0);
  if (info < 20) return { simple: info };
  if (info === 24) return { simple: take(reader, 1)[0] };
  throw new CborError(`unexpected CBOR simple value ${info}`);
}

function halfToNumber(b) {
  const half = (b[0] << 8) | b[1];
  const exponent = (half >> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  const sign = half & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * 2 ** -14 * (mantissa / 1024);
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + mantissa / 1024);
}

/** The CBOR head of a byte string / text / array of `length`. */
function head(major, length) {
  if (length < 24) return [(major << 5) | length];
  if (length < 0x100) return [(major << 5) | 24, length];
  if (length < 0x10000) return [(major << 5) | 25, length >> 8, length & 0xff];
  return [(major << 5) | 26, (length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff];
}

/**
 * CBOR encoding of an array of text strings and byte strings (enough for COSE's Sig_structure).
 */
export function encodeArrayOfStrings(items) {
  const parts = [Uint8Array.from(head(4, items.length))];
  for (const item of items) {
    const bytes = typeof item === "string" ? new TextEncoder().encode(item) : item;
    parts.push(Uint8Array.from(head(typeof item === "string" ? 3 : 2, bytes.length)), bytes);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** A decoded CBOR value as JSON-like data: maps with text keys become objects (for display). */
export function cborToJson(value) {
  if (value instanceof Map) {
    const out = {};
    for (const [k, v] of value) out[String(k)] = cborToJson(v);
    return out;
  }
  if (Array.isArray(value)) return value.map(cborToJson);
  if (value instanceof Tagged) return cborToJson(value.value);
  return value;
}
