#!/usr/bin/env bash
# Counts golangci-lint's dupl findings at a threshold of 100 tokens over the
# whole tree, tests included (make lint runs dupl at 150 and skips tests).
#
# Usage: hack/dupl.sh <golangci-lint> [-v]
set -euo pipefail
lint=${1:?usage: hack/dupl.sh <golangci-lint> [-v]}
root=$(cd "$(dirname "$0")/.." && pwd)
cfg=$(mktemp --suffix=.yml)
trap 'rm -f "$cfg"' EXIT
cat >"$cfg" <<'YAML'
version: "2"
run:
  tests: true
linters:
  default: none
  enable: [dupl]
  settings:
    dupl:
      threshold: 100
issues:
  max-issues-per-linter: 0
  max-same-issues: 0
YAML
cd "$root"
out=$("$lint" run --config "$cfg" ./... 2>&1 || true)
if [ "${2:-}" = "-v" ]; then
	echo "$out"
fi
n=$(echo "$out" | sed -n 's/^\* dupl: \([0-9]*\)$/\1/p')
echo "dupl findings at 100 tokens, tests included: ${n:-0}"
