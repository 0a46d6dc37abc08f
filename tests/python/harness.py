"""Shared by the Python tests and bench/python: where the CLI and the package are, and the agents harness
(N agent processes publishing through a bus module, killed with SIGKILL at random moments and restarted)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_DLL = ROOT / "src" / "BmadGuard.Cli" / "bin" / "Release" / "net10.0" / "bmadguard.dll"
AGENT = HERE / "agent_proc.py"
EVENT_TYPE = "agent_tick"

try:  # the installed package (CI installs it into a scratch dir on PYTHONPATH), else the source tree
    import bmadguard  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "src" / "python"))
    import bmadguard  # noqa: F401

PACKAGE_DIR = str(Path(bmadguard.__file__).resolve().parent.parent)


def cli_command() -> str:
    """$BMADGUARD_CLI, else ``dotnet <repo>/src/BmadGuard.Cli/bin/Release/net10.0/bmadguard.dll``."""
    return os.environ.get("BMADGUARD_CLI") or f"dotnet {DEFAULT_DLL}"


def cli_available() -> bool:
    return bool(os.environ.get("BMADGUARD_CLI")) or DEFAULT_DLL.is_file()


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env["BMADGUARD_CLI"] = cli_command()
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_DIR, str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra or {})
    return env


def soak_seconds() -> float:
    try:
        return float(os.environ.get("BMADGUARD_PY_SOAK", "0") or 0)
    except ValueError:
        return 0.0


@dataclass
class RunResult:
    mode: str
    acked: List[str] = field(default_factory=list)   # every uid whose publish returned True
    stored: Dict[str, int] = field(default_factory=dict)  # uid -> times found in the bus
    kills: int = 0
    seconds: float = 0.0
    steady_rate: float = 0.0  # events/s across all agents after each one's first publish (runs without kills)

    @property
    def lost(self) -> Set[str]:
        return {u for u in self.acked if self.stored.get(u, 0) == 0}

    @property
    def duplicated(self) -> Set[str]:
        return {u for u, n in self.stored.items() if n > 1}


def _start(mode: str, target: str, name: str, workdir: Path, until: float, count: Optional[int],
           env: Dict[str, str]) -> subprocess.Popen:  # type: ignore[type-arg]
    args = [sys.executable, str(AGENT), "--mode", mode, "--target", target, "--name", name,
            "--ack-log", str(workdir / f"{name}.acks"), "--until", repr(until)]
    if count is not None:
        args += ["--count", str(count)]
    # A session of its own: SIGKILL to the group takes the agent and its bmadguard child down together.
    with open(workdir / f"{name}.err", "ab") as err:
        return subprocess.Popen(args, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)


def run_agents(mode: str, target: str, workdir: Path, agents: int = 4, seconds: float = 5.0,
               kill: bool = True, seed: Optional[int] = None, count: Optional[int] = None) -> RunResult:
    """Runs ``agents`` agent processes publishing through ``mode``'s bus until ``seconds`` have passed (or each
    published ``count``), SIGKILLing a random one at random moments and restarting it. Returns what was acked
    and what the bus holds."""
    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    if mode.startswith("oldbus"):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    tmp = workdir / "tmp"
    tmp.mkdir(exist_ok=True)
    env = child_env({"TMPDIR": str(tmp)})  # the old bus's temp files land beside the test's files
    start = time.monotonic()
    until = time.time() + seconds
    names = [f"agent{i}" for i in range(agents)]
    procs = {n: _start(mode, target, n, workdir, until, count, env) for n in names}
    kills = 0
    try:
        while kill and time.time() < until - 0.3:
            time.sleep(rng.uniform(0.1, 0.6))
            name = rng.choice(names)
            p = procs[name]
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                kills += 1
            p.wait()
            if time.time() < until - 0.3:
                procs[name] = _start(mode, target, name, workdir, until, count, env)
        for p in procs.values():
            p.wait(timeout=max(60.0, seconds * 4))
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    result = RunResult(mode=mode, kills=kills, seconds=time.monotonic() - start)
    firsts, ends, published = [], [], 0
    for n in names:
        path = workdir / f"{n}.acks"
        if path.exists():
            result.acked += [line for line in path.read_text().split("\n")[:-1] if line]
        timing = workdir / f"{n}.acks.timing"
        if timing.exists():
            for line in timing.read_text().splitlines():
                f0, f1, k = line.split()
                firsts.append(float(f0))
                ends.append(float(f1))
                published += int(k)
    if firsts and max(ends) > min(firsts):
        result.steady_rate = published / (max(ends) - min(firsts))
    for ev in read_views(mode, target, workdir, 1)[0]:
        uid = ev["data"].get("uid") if isinstance(ev.get("data"), dict) else None
        if uid is not None:
            result.stored[uid] = result.stored.get(uid, 0) + 1
    return result


def read_views(mode: str, target: str, workdir: Path, processes: int) -> List[List[dict]]:
    """``get_events(EVENT_TYPE)`` as seen by ``processes`` separate agent processes."""
    env = child_env({"TMPDIR": str(workdir / "tmp")})
    procs = []
    for i in range(processes):
        out = workdir / f"view{i}.json"
        procs.append((out, subprocess.Popen([sys.executable, str(AGENT), "--mode", mode, "--target", target,
                                             "--name", f"viewer{i}", "--views-out", str(out)], env=env)))
    views = []
    for out, p in procs:
        if p.wait(timeout=120) != 0:
            raise RuntimeError(f"viewer process exited {p.returncode}")
        views.append(json.loads(out.read_text()))
    return views
