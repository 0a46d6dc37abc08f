#!/usr/bin/env bash
# The CLI contract, one build against another: runs the same commands with REFERENCE (e.g. `dotnet bmadguard.dll`,
# the JIT build the test suite covers) and CANDIDATE (e.g. the Native AOT or ReadyToRun `bmadguard`), each on its own
# scratch store, and compares stdout, stderr and exit codes line by line (ids, timestamps and the scratch paths masked).
#
#   build/cli-contract.sh "dotnet src/BmadGuard.Cli/bin/Release/net10.0/bmadguard.dll" output/cli-start/aot/bmadguard
#
# Exit 0 when every command behaves the same, 1 with a diff otherwise. Covers init, publish (arguments and --stdin),
# get, stats, verify (store, and a JSON file against a JSON Schema), exit-2 bad input and usage errors, and --help.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 REFERENCE-COMMAND CANDIDATE-COMMAND" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/bmadguard-contract.XXXXXX")
trap 'rm -rf "$work"' EXIT

transcript() {  # transcript <command> <dir>: every case's exit code, stdout and stderr, with run-specific values masked
  local bg=$1 d=$2
  mkdir -p "$d"
  printf '{"events":[{"timestamp":"2026-01-01T00:00:00","event":"x","data":{}}]}' >"$d/bus.json"
  printf '{"type":"object","required":["name"],"properties":{"name":{"type":"string"},"n":{"type":"integer","maximum":10}}}' >"$d/schema.json"
  printf '{\n  "n": 11\n}' >"$d/bad.json"
  printf '{"name":"x","n":3}' >"$d/good.json"
  local cases=(
    "init --store $d/s"
    "init --store $d/s"
    "publish --store $d/s --type agent.started --data {\"a\":1,\"b\":[true,null,\"é\"]} --source t --correlation-id c1"
    "publish --store $d/s --type t"
    "publish --store $d/s --type t --data {bad"
    "publish --store $d/s --data {}"
    "publish --store $d/s --type t --data {} --no-such-flag"
    "get --store $d/s"
    "get --store $d/s --type t --last 1"
    "get --store $d/missing"
    "stats --store $d/s"
    "verify --store $d/s"
    "verify --file $d/good.json --schema $d/schema.json"
    "verify --file $d/bad.json --schema $d/schema.json"
    "verify --file $d/good.json --schema $d/bus.json"
    "health --store $d/missing"
    "nosuchcommand"
    "--help"
    "publish --help"
  )
  local c i=0
  for c in "${cases[@]}"; do
    i=$((i + 1))
    echo "== $c" | sed "s#$d#<dir>#g"
    # shellcheck disable=SC2086  # word splitting is the point: each case is one command line
    local rc=0; $bg $c >"$d/out" 2>"$d/err" || rc=$?
    echo "exit $rc"
    cat "$d/out" "$d/err"
  done
  # publish --stdin: a batch, acknowledged per line, with one bad line
  echo "== publish --stdin"
  local rc=0
  printf '{"type":"a","data":{"n":1}}\n{"type":"b"}\nnot json\n' | $bg publish --store "$d/s" --stdin >"$d/out" 2>"$d/err" || rc=$?
  echo "exit $rc"; cat "$d/out" "$d/err"
} 
mask() {
  sed -E -e "s#$1#<dir>#g" \
    -e 's/"id":"[0-9a-f-]{36}"/"id":"<id>"/g' \
    -e 's/"(timestamp|created|checked|checkedAt|lastEvent|firstEvent|opened|at|time)":"[0-9T:.+-]+Z?"/"\1":"<time>"/g' \
    -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9:]+)?/<time>/g' \
    -e 's/"(elapsedMs|durationMs|ms|bytes|sizeBytes|freeBytes)":[0-9.]+/"\1":<n>/g'
}
transcript "$1" "$work/ref" | mask "$work/ref" >"$work/ref.txt"
[ -n "${CLI_CONTRACT_SHOW:-}" ] && cat "$work/ref.txt"
transcript "$2" "$work/cand" | mask "$work/cand" >"$work/cand.txt"
if diff -u "$work/ref.txt" "$work/cand.txt"; then
  echo "cli-contract: $(grep -c '^== ' "$work/ref.txt") cases, same stdout, stderr and exit codes"
else
  echo "cli-contract: the two builds differ (above: - reference, + candidate)" >&2
  exit 1
fi
