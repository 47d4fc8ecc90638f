#!/usr/bin/env bash
# The whole test suite. Installs what the independent verifiers need, then runs every test.
#   apt: zbar-tools (zbarimg decodes our QR images)
#   pip: pyld (URDNA2015 reference), pynacl (Ed25519 reference)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v zbarimg >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq zbar-tools >/dev/null
fi
python3 -c "import pyld, nacl" 2>/dev/null || python3 -m pip install -q "pyld==2.0.4" "pynacl==1.5.0"
cargo test --release --workspace --no-fail-fast -- --include-ignored
