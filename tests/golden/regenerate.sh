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
# Traces of the sample config (explain/trace): one block per query of lab.trace-queries.
queries="$root/tests/golden/lab.trace-queries"
out="$root/tests/golden/lab.trace"
: > "$out"
while read -r from to proto extra; do
  [[ -z $from || $from == \#* ]] && continue
  echo "\$ trace --from $from --to $to $proto${extra:+ $extra}" >> "$out"
  # shellcheck disable=SC2086  # $extra is one optional flag
  # Relative to the repository, so the file:line:col in the output are the same on every machine.
  (cd "$root" && "$ctl" trace --config configs/lab.toml --from "$from" --to "$to" "$proto" $extra) >> "$out"
  echo >> "$out"
done < "$queries"
echo "tests/golden/lab.trace: $(grep -c '^\$ trace' "$out") traces"
