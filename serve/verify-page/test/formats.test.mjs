// verifyPayload on the other formats the page reads: SMART Health Cards (the spec's samples) and
// EU DCC (the official test cases), read in place from shared/.

import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { verifyPayload } from "../src/verify.js";

const SHARED = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..", "shared");

// ---- SMART Health Cards

const SHC = join(SHARED, "shc-testdata");
const SPEC_ISSUER = "https://spec.smarthealth.cards/examples/issuer";
const shcTrust = () => ({ jwks: { [SPEC_ISSUER]: JSON.parse(readFileSync(join(SHC, "spec-issuer-jwks.json"), "utf8")) } });
const readShc = (path) => readFileSync(join(SHC, path), "utf8");
// A bare JWS that verifies (the sample's name speaks of a byte-order mark; strip one if present).
const validJws = () => readShc("valid/test-example-00-d-jws-utf8_bom_prefix.txt").replace(/^\uFEFF/, "").trim();

/** The QR text of a JWS: "shc:/" and two digits (character code - 45) per character. */
const toShcQr = (jws) => "shc:/" + [...jws].map((c) => String(c.charCodeAt(0) - 45).padStart(2, "0")).join("");

test("SHC: the spec's sample card is VALID as a JWS, as shc:/ QR text, as QR bytes and in a file", async () => {
  const jws = validJws();
  const inputs = {
    jws,
    qrText: toShcQr(jws),
    qrBytes: new TextEncoder().encode(toShcQr(jws)),
    file: readShc("valid/test-example-00-e-file-multi-jws.smart-health-card"),
  };
  for (const [form, input] of Object.entries(inputs)) {
    const result = await verifyPayload(input, shcTrust());
    assert.equal(result.outcome, "VALID", `${form}: ${JSON.stringify(result)}`);
    assert.equal(result.format, "shc", form);
    assert.equal(result.details.issuer, SPEC_ISSUER, form);
    assert.match(result.details.name, /Anyperson/, form);
    assert.match(result.note, /no status/, form);
  }
});

test("SHC: the spec's broken samples are INVALID, each for its own reason", async () => {
  const expected = {
    "test-example-00-d-jws-der-signature.txt": ["malformed-proof", /DER/],
    "test-example-00-d-jws-invalid-signature.txt": ["signature-mismatch", /signature does not match/],
    "test-example-00-d-jws-no_deflate.txt": ["malformed", /DEF/],
    "test-example-00-d-jws-wrong_jws_header_kid.txt": ["unknown-key", /unknown key/],
  };
  const files = readdirSync(join(SHC, "invalid")).sort();
  assert.deepEqual(files, Object.keys(expected).sort(), "the invalid samples changed: update this test");
  for (const file of files) {
    const result = await verifyPayload(readShc(join("invalid", file)), shcTrust());
    const [code, reason] = expected[file];
    assert.equal(result.outcome, "INVALID", `${file}: ${JSON.stringify(result)}`);
    assert.equal(result.code, code, `${file}: ${result.reason}`);
    assert.match(result.reason, reason, file);
  }
});

test("SHC: a changed payload byte, or an issuer not in the trust, is INVALID", async () => {
  const [header, payload, signature] = validJws().split(".");
  const i = 40;
  const flipped = payload.slice(0, i) + (payload[i] === "A" ? "B" : "A") + payload.slice(i + 1);
  const tampered = await verifyPayload(toShcQr([header, flipped, signature].join(".")), shcTrust());
  assert.equal(tampered.outcome, "INVALID");
  assert.ok(["signature-mismatch", "malformed"].includes(tampered.code), JSON.stringify(tampered));

  const untrusted = await verifyPayload(validJws(), { jwks: {} });
  assert.equal(untrusted.outcome, "INVALID");
  assert.equal(untrusted.code, "unknown-issuer");
  assert.match(untrusted.reason, /spec\.smarthealth\.cards/);
});

// ---- EU DCC official test cases

const DCC = join(SHARED, "dcc-testdata", "common", "2DCode", "raw");

for (const file of readdirSync(DCC).filter((f) => f.endsWith(".json")).sort()) {
  const c = JSON.parse(readFileSync(join(DCC, file), "utf8"));
  const description = c.TESTCTX.DESCRIPTION;
  test(`EU DCC ${file}: ${description}`, async () => {
    const pem = `-----BEGIN CERTIFICATE-----\n${c.TESTCTX.CERTIFICATE}\n-----END CERTIFICATE-----\n`;
    const result = await verifyPayload(c.PREFIX, { dsc: [pem] }, { now: new Date(c.TESTCTX.VALIDATIONCLOCK) });
    const allExpected = Object.values(c.EXPECTEDRESULTS).every((v) => v === true);
    // The page verifies ES256 only; an RSA document signer (PS256) must be refused, not accepted.
    const rsaSigner = new X509Certificate(Buffer.from(c.TESTCTX.CERTIFICATE, "base64")).publicKey.asymmetricKeyType === "rsa";
    if (allExpected && rsaSigner) {
      assert.equal(result.outcome, "INVALID", JSON.stringify(result));
      assert.equal(result.code, "unsupported-proof");
      assert.match(result.reason, /PS256/);
      return;
    }
    assert.equal(result.outcome, allExpected ? "VALID" : "INVALID", `${description}: ${JSON.stringify(result)}`);
    if (c.PREFIX.startsWith("HC1:")) assert.equal(result.format, "eu-dcc");
    if (result.outcome === "VALID" && c.JSON) {
      const entry = (c.JSON.v || c.JSON.t || c.JSON.r)[0];
      assert.equal(result.details.certificateId, entry.ci);
      assert.equal(result.details.name, `${c.JSON.nam.gn} ${c.JSON.nam.fn}`);
    } else if (result.outcome === "VALID") {
      assert.match(result.details.certificateId, /^URN:UVCI:/i);
    }
    // Each failing expectation has its matching reason.
    const failed = Object.entries(c.EXPECTEDRESULTS).filter(([, v]) => v === false).map(([k]) => k);
    const codes = {
      EXPECTEDVERIFY: ["signature-mismatch", "unknown-key", "malformed"],
      EXPECTEDEXPIRATIONCHECK: ["expired", "not-yet-valid"],
      EXPECTEDKEYUSAGE: ["key-usage"],
      EXPECTEDSCHEMAVALIDATION: ["malformed"],
      EXPECTEDUNPREFIX: ["unrecognised"],
      EXPECTEDB45DECODE: ["malformed"],
      EXPECTEDCOMPRESSION: ["malformed"],
    };
    for (const expectation of failed) {
      assert.ok(codes[expectation], `no reason code known for ${expectation}`);
      assert.ok(codes[expectation].includes(result.code), `${expectation} false: got ${result.code} (${result.reason})`);
    }
  });
}

test("EU DCC: a valid certificate is INVALID without its signer in the trust, and after the clock passes its expiry", async () => {
  const c = JSON.parse(readFileSync(join(DCC, "CO3.json"), "utf8"));
  const now = new Date(c.TESTCTX.VALIDATIONCLOCK);
  const unknown = await verifyPayload(c.PREFIX, { dsc: [] }, { now });
  assert.equal(unknown.outcome, "INVALID");
  assert.equal(unknown.code, "unknown-key");
  const pem = c.TESTCTX.CERTIFICATE;
  const later = await verifyPayload(c.PREFIX, { dsc: [pem] }, { now: new Date("2100-01-01T00:00:00Z") });
  assert.equal(later.outcome, "INVALID");
  assert.equal(later.code, "expired");
});
