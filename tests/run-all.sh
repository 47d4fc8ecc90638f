#!/usr/bin/env bash
# The whole test suite. Installs what the independent verifiers need, then runs every test.
#   apt: zbar-tools (zbarimg decodes our QR images), poppler-utils (pdftoppm/pdftotext read our PDFs)
#   pip: pyld (URDNA2015 reference), pynacl (Ed25519 reference), pycose + cbor2<6 + base45 +
#        cryptography (EU DCC), jsonschema (DCC schema), jwcrypto (SMART Health Card JWS),
#        fhir.resources (FHIR R4 models)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v zbarimg >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq zbar-tools poppler-utils >/dev/null
fi
python3 -c "import pyld, nacl, pycose, cbor2, base45, cryptography, jsonschema, jwcrypto, fhir.resources" 2>/dev/null ||
  python3 -m pip install -q "pyld==2.0.4" "pynacl==1.5.0" "pycose==1.1.0" "cbor2<6" "base45==0.4.4" \
    "cryptography>=42" "jsonschema>=4.20" "jwcrypto>=1.5" "fhir.resources==8.3.0"
cargo test --release --workspace --no-fail-fast -- --include-ignored
