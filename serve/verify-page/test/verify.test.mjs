// verifyPayload against fixtures made independently (PyLD + PyNaCl, test/make_fixtures.py), the
// credential DIVOC's own signer made, and the W3C vc-di-eddsa test vectors.
//
//   cd serve/verify-page && npm ci && cd ../.. && node --test serve/verify-page/test/
//
// Needs python3 with pyld==2.0.4 and pynacl (tests/run-all.sh installs them).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { verifyPayload } from "../src/verify.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, "..", "..", "..");
const SHARED = join(REPO, "..", "shared");
const CONTEXT_DIR = join(REPO, "formats", "credential", "contexts");

function makeFixtures() {
  const dir = mkdtempSync(join(tmpdir(), "divoc-verify-page-fixtures-"));
  try {
    const out = join(dir, "fixtures.json");
    const run = spawnSync("python3", [join(HERE, "make_fixtures.py"), out], { encoding: "utf8" });
    if (run.error) throw new Error(`cannot run python3: ${run.error.message}`);
    if (run.status !== 0) throw new Error(`make_fixtures.py failed (exit ${run.status}):\n${run.stderr}`);
    return JSON.parse(readFileSync(out, "utf8"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fixtures = makeFixtures();
const now = new Date(fixtures.now);

function inputOf(c) {
  if (typeof c.input.text === "string") return c.input.text;
  return new Uint8Array(Buffer.from(c.input.base64, "base64"));
}

function trustOf(c) {
  if (c.trust === null) return fixtures.trust;
  assert.ok(c.trust in fixtures.trustVariants, `unknown trust variant ${c.trust}`);
  return { ...fixtures.trust, statusLists: fixtures.trustVariants[c.trust] };
}

test("the fixtures cover every outcome", () => {
  const outcomes = new Set(fixtures.cases.map((c) => c.expect.outcome));
  assert.deepEqual([...outcomes].sort(), ["INVALID", "REVOKED", "SUSPENDED", "VALID"]);
});

for (const c of fixtures.cases) {
  test(`fixture: ${c.name} -> ${c.expect.outcome}${c.expect.code ? " (" + c.expect.code + ")" : ""}`, async () => {
    const result = await verifyPayload(inputOf(c), trustOf(c), { now });
    const context = `${c.name}: got ${JSON.stringify({ outcome: result.outcome, code: result.code, reason: result.reason })}`;
    assert.equal(result.outcome, c.expect.outcome, context);
    if (c.expect.code) assert.equal(result.code, c.expect.code, context);
    if (c.expect.format) assert.equal(result.format, c.expect.format, context);
    if (result.outcome === "INVALID") {
      assert.ok(typeof result.reason === "string" && result.reason.length > 10, `${context}: INVALID needs a reason`);
    }
    if (c.expect.outcome === "SUSPENDED") {
      assert.equal(result.until, c.expect.until, `${context}: until`);
      if (c.expect.until) assert.match(result.reason, new RegExp(c.expect.until));
    }
    if (result.outcome !== "INVALID") {
      // The details come from the signed document itself.
      const doc = typeof c.input.text === "string" ? JSON.parse(c.input.text) : null;
      assert.ok(result.details && result.details.name, `${context}: details.name`);
      if (doc) {
        assert.equal(result.details.name, doc.credentialSubject.name);
        assert.equal(result.details.certificateId, doc.evidence[0].certificateId);
        assert.equal(result.details.dose, doc.evidence[0].dose);
        assert.equal(result.details.totalDoses, doc.evidence[0].totalDoses);
        assert.equal(result.details.vaccine, doc.evidence[0].vaccine);
      }
    }
    // The short code is what the page reports to the server: never personal data.
    assert.match(result.code, /^[a-z-]+$/, `${context}: code`);
  });
}

test("the suspension's end date decides: suspended on its last day, valid the day after", async () => {
  const c = fixtures.cases.find((x) => x.expect.until);
  const lastDay = new Date(c.expect.until + "T23:00:00Z");
  const dayAfter = new Date(Date.parse(c.expect.until + "T00:00:00Z") + 86_400_000);
  assert.equal((await verifyPayload(inputOf(c), fixtures.trust, { now: lastDay })).outcome, "SUSPENDED");
  assert.equal((await verifyPayload(inputOf(c), fixtures.trust, { now: dayAfter })).outcome, "VALID");
});

test("DIVOC's QR bytes written as UTF-8 text by one of its generators are read too", async () => {
  const c = fixtures.cases.find((x) => x.input.base64 && x.expect.outcome === "VALID");
  const zip = Buffer.from(c.input.base64, "base64");
  const expanded = new TextEncoder().encode(String.fromCharCode(...zip));
  assert.notEqual(expanded.length, zip.length, "the fixture ZIP has bytes >= 0x80");
  const result = await verifyPayload(expanded, fixtures.trust, { now });
  assert.equal(result.outcome, "VALID", JSON.stringify(result));
  assert.equal(result.format, "divoc-qr");
});

test("a context that the trust does not hold is refused, never fetched", async () => {
  const c = fixtures.cases.find((x) => x.name.startsWith("eddsa-rdfc-2022, VC 2.0"));
  const contexts = { ...fixtures.trust.contexts };
  delete contexts["https://cowin.gov.in/credentials/vaccination/v1"];
  const result = await verifyPayload(inputOf(c), { ...fixtures.trust, contexts }, { now });
  assert.equal(result.outcome, "INVALID");
  assert.equal(result.code, "unknown-context");
  assert.match(result.reason, /https:\/\/cowin\.gov\.in\/credentials\/vaccination\/v1/);
});

test("a pasted credential and the same credential in a QR decide alike", async () => {
  for (const c of fixtures.cases.filter((x) => x.input.base64 && x.expect.outcome !== "INVALID")) {
    const zip = Buffer.from(c.input.base64, "base64");
    // The QR's certificate.json, pasted as text.
    const { unzipSync, strFromU8 } = await import("fflate");
    const text = strFromU8(unzipSync(new Uint8Array(zip))["certificate.json"]);
    const fromQr = await verifyPayload(new Uint8Array(zip), fixtures.trust, { now });
    const fromText = await verifyPayload(text, fixtures.trust, { now });
    assert.equal(fromText.outcome, fromQr.outcome, c.name);
    assert.deepEqual(fromText.details, fromQr.details, c.name);
  }
});

// ---- the credential DIVOC's own signer produced (read in place from shared/)

const divocContexts = () => {
  const read = (name) => JSON.parse(readFileSync(join(CONTEXT_DIR, name), "utf8"));
  return {
    "https://www.w3.org/2018/credentials/v1": read("credentials-v1.jsonld"),
    // DIVOC's own deployment names its vaccination context under divoc.dev.
    "https://divoc.dev/credentials/vaccination/v1": read("divoc-vaccination-v1.jsonld"),
  };
};

test("DIVOC's Ed25519Signature2018 credential is VALID with a warning about its key's controller", async () => {
  const text = readFileSync(join(SHARED, "divoc-vector", "divoc-ed25519-2018-signed.json"), "utf8");
  const issuerKey = JSON.parse(readFileSync(join(SHARED, "divoc-vector", "divoc-issuer.json"), "utf8")).verificationMethods["did:india"];
  const trust = { contexts: divocContexts(), keys: [{ id: issuerKey.id, controller: issuerKey.controller, publicKeyBase58: issuerKey.publicKeyBase58 }] };
  const result = await verifyPayload(text, trust);
  assert.equal(result.outcome, "VALID", JSON.stringify(result));
  assert.equal(result.code, "no-status");
  assert.match(result.warning, /not the controller/);
  assert.equal(result.details.name, JSON.parse(text).credentialSubject.name);

  const tampered = await verifyPayload(text.replace('"age": "26"', '"age": "62"'), trust);
  assert.notEqual(text.replace('"age": "26"', '"age": "62"'), text);
  assert.equal(tampered.outcome, "INVALID");
  assert.equal(tampered.code, "signature-mismatch");
  assert.match(tampered.reason, /signature does not match/);

  const withoutKey = await verifyPayload(text, { contexts: divocContexts(), keys: [] });
  assert.equal(withoutKey.outcome, "INVALID");
  assert.equal(withoutKey.code, "unknown-key");
  assert.match(withoutKey.reason, /did:india/);
});

// ---- W3C vc-di-eddsa test vectors (read in place from shared/)

const VECTORS = join(SHARED, "w3c-vc-di-eddsa-vectors", "TestVectors");

function vectorTrust() {
  const read = (path) => JSON.parse(readFileSync(path, "utf8"));
  const { publicKeyMultibase } = read(join(VECTORS, "keyPair.json"));
  const signed = read(join(VECTORS, "eddsa-rdfc-2022", "signedDataInt.json"));
  return {
    contexts: {
      "https://www.w3.org/ns/credentials/v2": read(join(CONTEXT_DIR, "credentials-v2.jsonld")),
      "https://w3id.org/security/suites/ed25519-2020/v1": read(join(CONTEXT_DIR, "ed25519-signature-2020-v1.jsonld")),
      // The vectors' example vocabulary: a test-only document of the Rust crate, read in place.
      "https://www.w3.org/ns/credentials/examples/v2": read(join(REPO, "formats", "credential", "tests", "contexts", "examples-v2.jsonld")),
    },
    keys: [{ id: signed.proof.verificationMethod, controller: signed.issuer, publicKeyMultibase }],
  };
}

for (const [suite, file] of [["Ed25519Signature2020", "signedEdSig.json"], ["eddsa-rdfc-2022", "signedDataInt.json"]]) {
  test(`W3C vector ${suite}: VALID, and INVALID once altered`, async () => {
    const text = readFileSync(join(VECTORS, suite, file), "utf8");
    const trust = vectorTrust();
    const result = await verifyPayload(text, trust);
    assert.equal(result.outcome, "VALID", JSON.stringify(result));
    const altered = text.replace("The School of Examples", "The School of Exemptions");
    assert.notEqual(altered, text);
    const tampered = await verifyPayload(altered, trust);
    assert.equal(tampered.outcome, "INVALID");
    assert.equal(tampered.code, "signature-mismatch");
  });
}
