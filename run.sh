#!/usr/bin/env bash
# The main job on a fresh machine, in one command: builds the bmadguard CLI, creates the default store if it is
# missing (or the one in $BMADGUARD_STORE), publishes an event, shows the last events and the statistics, verifies
# the store deeply, takes a verified backup (keeping the last 10) and prints the health report.
#   bash run.sh                      the demo above
#   bash run.sh <bmadguard args>     any bmadguard command on the same store, e.g. bash run.sh get --last 5
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build src/BmadGuard.Cli -c Release -nologo -v q >/dev/null || {
  echo "run.sh: building src/BmadGuard.Cli failed; rerun: dotnet build src/BmadGuard.Cli -c Release" >&2
  exit 1
}
bmadguard() { dotnet src/BmadGuard.Cli/bin/Release/net10.0/bmadguard.dll "$@"; }
bmadguard_store() { bmadguard init | python3 -c 'import json,sys; print(json.load(sys.stdin)["store"])'; }

bmadguard init >/dev/null   # creates the default store, or confirms the one already there
if [ "$#" -gt 0 ]; then
  bmadguard "$@"
  exit $?
fi
echo "# published (printed only once it is durable):"
bmadguard publish --type demo.hello --source run.sh --data "{\"host\":\"${HOSTNAME:-unknown}\",\"at\":\"$(date -u +%FT%TZ)\"}"
echo "# last 3 events:"
bmadguard get --last 3
echo "# statistics:"
bmadguard stats
echo "# deep verify (every record's checksum, seq continuity, backups against their manifests):"
bmadguard verify --store "$(bmadguard_store)"
echo "# verified backup:"
bmadguard backup --store "$(bmadguard_store)" --keep-last 10
echo "# health (exit 0 healthy, 1 degraded — e.g. no monitor running — 2 unhealthy):"
rc=0
bmadguard health --store "$(bmadguard_store)" || rc=$?
if [ "$rc" -ge 2 ]; then exit "$rc"; fi
