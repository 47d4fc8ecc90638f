// Small helpers shared by the verifiers.

/**
 * A verification that ended in INVALID. `code` is a short word the page may report to the server
 * (never personal data); the message is the reason shown to the person verifying.
 */
export class Invalid extends Error {
  constructor(code, reason) {
    super(reason);
    this.name = "Invalid";
    this.code = code;
  }
}

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 text of bytes, without a byte-order mark; null when the bytes are not UTF-8. */
export function bytesToText(bytes) {
  try {
    return STRICT_UTF8.decode(bytes).replace(/^\uFEFF/, "");
  } catch {
    return null;
  }
}

export function concatBytes(...arrays) {
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

export function firstOf(value) {
  return Array.isArray(value) ? value[0] : value;
}

/** The object without undefined, null or empty-string members. */
export function compact(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined && v !== null && v !== ""));
}
