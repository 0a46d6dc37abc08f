"""Finding the bmadguard CLI, running it once, and turning its stderr into exceptions.

The CLI contract: exit 0 ok, 1 store problem, 2 bad input or usage; a failure is one stderr line
``bmadguard: <Code>: <message>``; ``bmadguard: notice: <Code>: <message>`` lines are notices, not failures.
"""

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["BmadGuardError", "resolve_cli", "resolve_store", "run_cli", "parse_stderr_line"]

log = logging.getLogger("bmadguard")

CLI_ENV = "BMADGUARD_CLI"
STORE_ENV = "BMADGUARD_STORE"

# Both line-error shapes of `publish --stdin`: "bmadguard: <Code>: line <N>: <message>" (the contract) and
# "bmadguard: line <N>: <Code>: <message>" (the CLI before the input issue's change).
_LINE_ERROR = re.compile(r"^bmadguard: (?:(?P<code1>[A-Z][A-Za-z0-9]*): line (?P<line1>\d+)|line (?P<line2>\d+): (?P<code2>[A-Z][A-Za-z0-9]*)): ?(?P<msg>.*)$")
_NOTICE = re.compile(r"^bmadguard: notice: (?P<code>[A-Za-z0-9]+): ?(?P<msg>.*)$")
_ERROR = re.compile(r"^bmadguard: (?P<code>[A-Z][A-Za-z0-9]*): ?(?P<msg>.*)$")


class BmadGuardError(Exception):
    """A failure reported by the bmadguard CLI (or found before calling it).

    ``code`` is the CLI's error code (e.g. ``InvalidEventType``, ``StoreNotFound``), ``exit_code`` the CLI's
    exit code (1 store problem, 2 bad input; None when the CLI did not exit), ``line`` the NDJSON line number
    for a bad line of ``publish --stdin``.
    """

    def __init__(self, code: str, message: str, exit_code: Optional[int] = None, line: Optional[int] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.exit_code = exit_code
        self.line = line

    @property
    def is_bad_input(self) -> bool:
        """True when the CLI judged the input bad (exit 2): retrying the same call cannot succeed."""
        return self.exit_code == 2


def parse_stderr_line(text: str) -> Tuple[str, Optional[str], Optional[int], str]:
    """Classifies one stderr line: ("line", code, lineNo, msg), ("notice", code, None, msg),
    ("error", code, None, msg) or ("other", None, None, text)."""
    m = _LINE_ERROR.match(text)
    if m:
        code = m.group("code1") or m.group("code2")
        line = int(m.group("line1") or m.group("line2"))
        return ("line", code, line, m.group("msg"))
    m = _NOTICE.match(text)
    if m:
        return ("notice", m.group("code"), None, m.group("msg"))
    m = _ERROR.match(text)
    if m:
        return ("error", m.group("code"), None, m.group("msg"))
    return ("other", None, None, text)


def resolve_cli(cli: Optional[Any] = None) -> List[str]:
    """The CLI as an argv prefix: the ``cli`` argument (a command line string or a list), else $BMADGUARD_CLI
    (e.g. ``dotnet /path/bmadguard.dll``), else ``bmadguard`` on PATH."""
    if cli is None:
        cli = os.environ.get(CLI_ENV) or None
    if cli is None:
        found = shutil.which("bmadguard")
        if found is None:
            raise BmadGuardError("CliNotFound", f"The bmadguard CLI is not on PATH; install it or set {CLI_ENV} "
                                 "(for example 'dotnet /path/to/bmadguard.dll').")
        return [found]
    if isinstance(cli, str):
        argv = shlex.split(cli)
    else:
        argv = [str(a) for a in cli]
    if not argv:
        raise BmadGuardError("CliNotFound", f"The bmadguard CLI command is empty (check {CLI_ENV}).")
    return argv


def resolve_store(store: Optional[Any] = None) -> Optional[str]:
    """The store argument, else $BMADGUARD_STORE, else None (the CLI's default)."""
    if store is None:
        store = os.environ.get(STORE_ENV) or None
    return None if store is None else os.fspath(store)


def error_from_stderr(stderr: str, exit_code: Optional[int], what: str) -> BmadGuardError:
    """The last ``bmadguard: <Code>: <message>`` line of stderr as an exception (notices are logged)."""
    found: Optional[BmadGuardError] = None
    others: List[str] = []
    for raw in stderr.splitlines():
        kind, code, line, msg = parse_stderr_line(raw.rstrip("\r"))
        if kind == "line" and code is not None:
            found = BmadGuardError(code, f"line {line}: {msg}", exit_code, line)
        elif kind == "error" and code is not None:
            found = BmadGuardError(code, msg, exit_code)
        elif kind == "notice":
            log.warning("bmadguard notice: %s: %s", code, msg)
        elif raw.strip():
            others.append(raw.strip())
    if found is not None:
        return found
    detail = "; ".join(others[-3:]) if others else "no error message"
    return BmadGuardError("CliFailed", f"{what} exited {exit_code}: {detail}", exit_code)


def run_cli(cli: Sequence[str], args: Sequence[str], stdin: Optional[bytes] = None,
            timeout: Optional[float] = None) -> str:
    """Runs the CLI once; returns stdout, or raises BmadGuardError with the CLI's code on a non-zero exit."""
    argv = list(cli) + list(args)
    try:
        proc = subprocess.run(argv, input=stdin if stdin is not None else b"", stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
    except FileNotFoundError as ex:
        raise BmadGuardError("CliNotFound", f"Cannot start '{argv[0]}': {ex.strerror}") from ex
    except subprocess.TimeoutExpired as ex:
        raise BmadGuardError("CliTimeout", f"'{' '.join(args[:1])}' did not finish in {timeout} s") from ex
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise error_from_stderr(err, proc.returncode, f"bmadguard {args[0] if args else ''}".strip())
    for raw in err.splitlines():
        kind, code, _, msg = parse_stderr_line(raw)
        if kind == "notice":
            log.warning("bmadguard notice: %s: %s", code, msg)
    return proc.stdout.decode("utf-8")


def json_lines(text: str) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
