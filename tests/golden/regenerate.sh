#!/usr/bin/env bash
# Regenerates the translator's golden files from the sample configs.
# Usage: tests/golden/regenerate.sh [BUILD_DIR]   (default build/)
# Review the diff (git diff tests/golden) before committing: it is the change in flows that a
# translator change makes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$root/build}
ctl="$build/daemon/vpcguardctl"
[[ -x "$ctl" ]] || { echo "regenerate.sh: $ctl not built" >&2; exit 2; }
for config in lab; do
  "$ctl" flows "$root/configs/$config.toml" > "$root/tests/golden/$config.flows"
  echo "tests/golden/$config.flows: $(wc -l < "$root/tests/golden/$config.flows") flows"
done
