#!/usr/bin/env bash
# The whole test suite. Installs what the independent verifiers need, then runs every test.
#   apt: zbar-tools (zbarimg decodes our QR images), poppler-utils (pdftoppm/pdftotext read our PDFs),
#        chromium (tests/dashboard.rs opens the dashboard page in it), nodejs + npm if missing
#   pip: pyld (URDNA2015 reference), pynacl (Ed25519 reference), pycose + cbor2<6 + base45 +
#        cryptography (EU DCC), jsonschema (DCC schema), jwcrypto (SMART Health Card JWS),
#        fhir.resources (FHIR R4 models)
#   cargo: s3s-fs (an S3-compatible server on loopback for tests/s3.rs)
#   npm: playwright-core (tests/browser/package.json, pinned in its lock file) drives chromium;
#        the verify page's libraries and esbuild (serve/verify-page/package.json, lock file)
# Before the Rust tests: the verify page's own tests (node --test, with fixtures PyLD + PyNaCl
# sign independently of our Rust code), and a rebuild of its bundle that must equal the
# committed serve/verify-page/dist/app.js byte for byte (what `divoc serve` embeds).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v zbarimg >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1 ||
   ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq zbar-tools poppler-utils chromium >/dev/null
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
[ -d tests/browser/node_modules/playwright-core ] ||
  (cd tests/browser && { npm ci --no-audit --no-fund -q || npm install --no-audit --no-fund -q; })
[ -d serve/verify-page/node_modules/esbuild ] ||
  (cd serve/verify-page && { npm ci --no-audit --no-fund -q || npm install --no-audit --no-fund -q; })
python3 -c "import pyld, nacl, pycose, cbor2, base45, cryptography, jsonschema, jwcrypto, fhir.resources" 2>/dev/null ||
  python3 -m pip install -q "pyld==2.0.4" "pynacl==1.5.0" "pycose==1.1.0" "cbor2<6" "base45==0.4.4" \
    "cryptography>=42" "jsonschema>=4.20" "jwcrypto>=1.5" "fhir.resources==8.3.0"
# The S3-compatible server tests/s3.rs publishes to (the s3s project's file-backed server),
# built once into target/tools (about 5 minutes cold).
[ -x target/tools/bin/s3s-fs ] ||
  cargo install -q s3s-fs@0.14.1 --features binary --root target/tools
committed_bundle="$(mktemp)"
cp serve/verify-page/dist/app.js "$committed_bundle"
(cd serve/verify-page && node build.mjs)
if ! cmp -s "$committed_bundle" serve/verify-page/dist/app.js; then
  echo "serve/verify-page/dist/app.js differs from a rebuild of its sources: run" \
       "(cd serve/verify-page && npm ci && node build.mjs) and commit the result" >&2
  exit 1
fi
rm -f "$committed_bundle"
node --test serve/verify-page/test/
cargo test --release --workspace --no-fail-fast -- --include-ignored
