#!/usr/bin/env bash
# CLI start-up: what one `bmadguard publish --store S --type t --data '{}'` costs when an agent runs it once per event.
#
#   bench/cli-start.sh [--runs N] [--dir DIR] [--no-build] [--only jit,apphost,r2r,aot] [--out DIR] [--before DIR]
#
# Builds the CLI four ways into output/cli-start/ (skipped with --no-build when the builds are there):
#   jit      `dotnet bmadguard.dll` (framework-dependent, JIT-compiled at start: the tool before this bench)
#   apphost  the same files started through their native `bmadguard` launcher
#   r2r      ReadyToRun (framework-dependent, linux-x64): what the `bmadguard` tool package installs
#   aot      Native AOT: `dotnet publish src/BmadGuard.Cli -r linux-x64 -p:PublishAot=true`
# then, in ONE run, times N one-event publishes per build, each a fresh process, rounds interleaved (every round runs
# every candidate once, in a rotated order) so a busy machine or disk hits all of them alike. Same-run baselines:
#   python -c pass       a fresh python3 process that does nothing (the resolved interpreter, not a pyenv shim)
#   python append+fsync  a fresh python3 process appending a ~300-byte line to a file in the store's directory + fsync
#   fsync (in-process)   the harness itself appending a line + fsync: the I/O a publish cannot avoid
# Reported: median and p90 wall ms per publish, the median minus the in-process fsync ("beyond fsync": the goal is
# <= 30 ms), and each process's CPU time (user + system, all threads; it moves far less with other users' load),
# each also as a ratio to `python -c pass`. --before DIR adds `dotnet DIR/bmadguard.dll` (an older build, e.g. main's)
# to the run. Each store is created once per build (`init`), not timed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUNS=30 DIR="" BUILD=1 ONLY="jit,apphost,r2r,aot" OUT="$ROOT/output/cli-start" BEFORE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --before) BEFORE=$(cd "$2" && pwd); shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "cli-start: unknown option $1" >&2; exit 2 ;;
  esac
done
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

build() {  # build <name> <publish args...>
  local name=$1; shift
  if [ "$BUILD" = 1 ] || [ ! -e "$OUT/$name/bmadguard" ]; then
    echo "cli-start: building $name" >&2
    rm -rf "$OUT/$name"
    nice dotnet publish src/BmadGuard.Cli -c Release -nologo -v q -o "$OUT/$name" "$@" >"$OUT/$name.log" 2>&1 \
      || { tail -n 30 "$OUT/$name.log" >&2; echo "cli-start: building $name failed (log: $OUT/$name.log)" >&2; exit 1; }
  fi
}
mkdir -p "$OUT"
case ",$ONLY," in *,jit,*|*,apphost,*) build jit ;; esac
case ",$ONLY," in *,r2r,*) build r2r -r linux-x64 --self-contained false -p:PublishReadyToRun=true ;; esac
case ",$ONLY," in *,aot,*) build aot -r linux-x64 -p:PublishAot=true ;; esac

if [ -z "$DIR" ]; then DIR=$(mktemp -d "${TMPDIR:-/tmp}/bmadguard-cli-start.XXXXXX"); trap 'rm -rf "$DIR"' EXIT; fi
python3 - "$OUT" "$DIR" "$RUNS" "$ONLY" "$(command -v dotnet)" "$BEFORE" <<'PY'
import os, statistics, subprocess, sys, time
out, work, runs, only, dotnet, before = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","), sys.argv[5], sys.argv[6]
py = os.path.realpath(sys.executable)  # the interpreter itself: a pyenv shim would add its own start-up
line = (b'{"seq":1,"id":"00000000-0000-0000-0000-000000000000","type":"t","data":{}}' + b" " * 220)[:299] + b"\n"
cands = []  # (name, argv prefix)
if before: cands.append(("before (dotnet, --before)", [dotnet, os.path.join(before, "bmadguard.dll")]))
if "jit" in only: cands.append(("jit (dotnet bmadguard.dll)", [dotnet, os.path.join(out, "jit", "bmadguard.dll")]))
if "apphost" in only: cands.append(("apphost (JIT)", [os.path.join(out, "jit", "bmadguard")]))
if "r2r" in only: cands.append(("ReadyToRun", [os.path.join(out, "r2r", "bmadguard")]))
if "aot" in only: cands.append(("Native AOT", [os.path.join(out, "aot", "bmadguard")]))
fsync_file = os.path.join(work, "fsync.log")
procs = [("python -c pass", [py, "-c", "pass"]),
         ("python append+fsync", [py, "-c", "import os,sys\nf=open(sys.argv[1],'ab')\nf.write(b'x'*299+b'\\n')\nf.flush()\nos.fsync(f.fileno())", fsync_file])]
env = dict(os.environ)
for name, argv in cands:
    store = os.path.join(work, name.split()[0].lower() + "-store")
    r = subprocess.run(argv + ["init", "--store", store], capture_output=True, env=env)
    if r.returncode != 0:
        sys.exit(f"cli-start: {name}: init failed: {r.stderr.decode()}")
    r = subprocess.run(argv + ["publish", "--store", store, "--type", "t", "--data", "{}"], capture_output=True, env=env)
    if r.returncode != 0 or b'"seq":1' not in r.stdout:
        sys.exit(f"cli-start: {name}: publish did not acknowledge seq 1: {r.stdout!r} {r.stderr!r}")
    procs.append((name, argv + ["publish", "--store", store, "--type", "t", "--data", "{}"]))
samples = {n: [] for n, _ in procs}
samples["fsync (in-process)"] = []
def raw_fsync():
    t = time.perf_counter()
    with open(fsync_file, "ab") as f:
        f.write(line); f.flush(); os.fsync(f.fileno())
    return time.perf_counter() - t
cpu = {n: [] for n, _ in procs}
def run(argv):  # wall seconds, CPU seconds (user + system, all threads), exit code, stderr
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime, p.returncode, err
for _ in range(2):  # warm-up: page cache, dotnet host resolution
    for n, argv in procs:
        run(argv)
for i in range(runs):
    k = i % len(procs)
    for n, argv in procs[k:] + procs[:k]:
        wall, used, rc, err = run(argv)
        samples[n].append(wall)
        cpu[n].append(used)
        if rc != 0:
            sys.exit(f"cli-start: {n} exited {rc}: {err.decode()}")
        samples["fsync (in-process)"].append(raw_fsync())
ms = lambda xs: statistics.median(xs) * 1000
p90 = lambda xs: sorted(xs)[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))] * 1000
fs, base = ms(samples["fsync (in-process)"]), ms(samples["python -c pass"])
print(f"bmadguard CLI start: {runs} fresh processes each, interleaved; store dir {work}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
cbase = ms(cpu["python -c pass"])
print(f"{'candidate':<28}{'median ms':>10}{'p90 ms':>9}{'beyond fsync':>14}{'x python':>10}{'CPU ms':>9}{'CPU x python':>14}")
for n in ["fsync (in-process)"] + [n for n, _ in procs]:
    xs = samples[n]
    c = f"{ms(cpu[n]):>9.1f}{ms(cpu[n]) / cbase:>14.2f}" if n in cpu else ""
    print(f"{n:<28}{ms(xs):>10.1f}{p90(xs):>9.1f}{ms(xs) - fs:>14.1f}{ms(xs) / base:>10.2f}{c}")
print("beyond fsync = median wall time - median of the in-process append+fsync; goal for one publish: <= 30 ms.")
print("CPU ms = the process's user + system time (all threads), median: barely moves with other users' load, unlike wall time.")
PY
