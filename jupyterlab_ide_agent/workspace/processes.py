"""Background processes of one agent session: started at once, watched with psutil, stopped as a whole tree.

Each command runs under a tiny Python *supervisor* (``SUPERVISOR`` below, run with ``python -I -S``, ~25 ms):

- The supervisor is a child subreaper (Linux ``PR_SET_CHILD_SUBREAPER``): every orphan of the command, even one that
  called ``setsid``, is re-parented to it, so ``supervisor.children(recursive=True)`` is the complete tree and every
  process of it is reaped. Without it, a grandchild orphaned by a kill lands on PID 1, and many containers' PID 1
  (often the Jupyter server itself) never reaps it: a zombie per interrupted script.
- The command runs in its own session and process group, so one ``killpg`` reaches all of it; the supervisor is
  outside that group and survives every signal we send, so it is alive to reap what the signals kill.
- It reports the command's pid and exit code on a pipe and exits only when the whole tree is gone and reaped; so
  "its supervisor has exited" is exactly "nothing is left", with no polling.

A dedicated thread per process reads that pipe and reaps the supervisor: unlike an asyncio child watcher it is not
bound to one event loop (the CLI and tests run several) and, unlike ``run_in_executor``, it never holds one of the
default executor's few threads for the hours a training job runs. Coroutines wait on it through futures that the
thread completes with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

SUPERVISOR = r"""
import ctypes, os, signal, subprocess, sys
fd, cmd = int(sys.argv[1]), sys.argv[2:]
def say(line):
    try:
        os.write(fd, (line + "\n").encode())
    except OSError:
        pass
try:
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the command's orphans come to us
except Exception:
    pass
try:
    child = subprocess.Popen(cmd, start_new_session=True)
except OSError as exc:
    say("error %s%s" % (exc.strerror or exc, ": %s" % exc.filename if exc.filename else ""))
    os._exit(127)
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(sig, signal.SIG_IGN)
say("pid %d" % child.pid)
while True:
    try:
        pid, status = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    if pid == child.pid:
        say("exit %d" % os.waitstatus_to_exitcode(status))
"""

TAIL_MAX_BYTES = 1 << 20  # the tail is read from at most the last 1 MB of the log
TAIL_LINE_CHARS = 500  # longer lines are clipped for the model
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
STARTUP_TIMEOUT = 15.0  # seconds for the supervisor to report the command's pid
_SHELL = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


def read_tail(path: Path, n: int, max_bytes: int = TAIL_MAX_BYTES) -> list[str]:
    """The last ``n`` lines of a log, read backwards from its end: a 1 GB log costs what a 1 KB one does.

    Progress bars rewrite a line with ``\\r``: only the last state of such a line is kept. ANSI colours are removed.
    """
    if n <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            pos = end = fh.seek(0, os.SEEK_END)
            buf = b""
            while pos > 0 and buf.count(b"\n") <= n and end - pos < max_bytes:
                step = min(65536, pos)
                pos -= step
                fh.seek(pos)
                buf = fh.read(step) + buf
    except OSError:
        return []
    lines = buf.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    if pos > 0 and len(lines) > 1:
        lines.pop(0)  # cut in the middle
    out = []
    for raw in lines[-n:]:
        text = _ANSI.sub("", raw.decode("utf-8", errors="replace"))
        text = next((seg for seg in reversed(text.split("\r")) if seg.strip()), "")
        extra = len(text) - TAIL_LINE_CHARS
        out.append(text if extra <= 0 else f"{text[:TAIL_LINE_CHARS]} ... [+{extra} chars]")
    return out


class LineCounter:
    """Counts a growing log's lines incrementally, at most ``budget`` new bytes per call, so no call stalls."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.newlines, self.partial = path, 0, 0, False
        self._lock = threading.Lock()

    def advance(self, budget: int) -> tuple[int, bool]:
        """(lines so far, whether the whole file was counted). A busy counter answers with what it has."""
        if not self._lock.acquire(blocking=False):
            return self.newlines + self.partial, False
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                while budget > 0 and (chunk := fh.read(min(1 << 20, budget))):
                    self.newlines += chunk.count(b"\n")
                    self.partial = not chunk.endswith(b"\n")
                    self.offset += len(chunk)
                    budget -= len(chunk)
                complete = not fh.read(1)
        except OSError:
            complete = True
        finally:
            self._lock.release()
        return self.newlines + self.partial, complete


class ProcessError(Exception):
    """An expected failure (unknown pid, command that cannot start); the message says what to do."""


@dataclass
class ManagedProcess:
    """One command started by the table; its fields change only under ``_lock`` (the reader thread writes them)."""

    pid: int
    argv: list[str]
    command: str
    cwd: Path
    log_path: Path
    started: float
    supervisor: subprocess.Popen[bytes]
    status: str = "running"  # running | exited | interrupted | killed
    exit_code: int | None = None
    ended: float | None = None
    signals_sent: list[str] = field(default_factory=list)
    tree_done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(default_factory=list)
    _cpu: dict[tuple[int, float], psutil.Process] = field(default_factory=dict)
    _stats_lock: threading.Lock = field(default_factory=threading.Lock)
    lines: LineCounter | None = None

    @property
    def running(self) -> bool:
        return self.exit_code is None and self.status == "running"

    def runtime(self) -> float:
        return (self.ended or time.time()) - self.started

    # --- written by the reader thread -------------------------------------------------------
    def _record_exit(self, code: int | None) -> None:
        with self._lock:
            if self.status != "running":
                return
            last = self.signals_sent[-1] if self.signals_sent else None
            self.status = "killed" if last == "SIGKILL" or code is None else "interrupted" if last else "exited"
            self.exit_code, self.ended = code, time.time()
        self._notify()

    def _notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(lambda f=fut: f.done() or f.set_result(None))
            except RuntimeError:  # that loop is closed; nobody waits there any more
                pass

    async def wait_for(self, predicate: Any, timeout: float) -> bool:
        """Wait until ``predicate()`` holds (re-checked on every state change) or ``timeout`` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            fut: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._waiters.append((loop, fut))
            try:
                if not predicate():
                    await asyncio.wait({fut}, timeout=remaining)
            finally:
                with self._lock:
                    self._waiters.remove((loop, fut))
        return True

    # --- psutil ----------------------------------------------------------------------------
    def tree(self) -> list[psutil.Process]:
        """Every live process of the command's tree (the supervisor's descendants; zombies left out)."""
        if self.tree_done.is_set() or self.supervisor.returncode is not None:
            return []
        try:
            kids = psutil.Process(self.supervisor.pid).children(recursive=True)
        except psutil.Error:
            return []
        live = []
        for p in kids:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    live.append(p)
            except psutil.Error:
                pass
        return live

    def usage(self) -> tuple[float, int, int]:
        """(CPU %, RSS bytes, process count) of the tree. A process seen for the first time reports its average CPU
        since it started; after that ``cpu_percent`` measures the interval since the previous check."""
        with self._stats_lock:
            return self._usage()

    def _usage(self) -> tuple[float, int, int]:
        cpu, rss, seen, now = 0.0, 0, {}, time.time()
        for p in self.tree():
            try:
                key = (p.pid, p.create_time())
                with p.oneshot():
                    cached = self._cpu.get(key)
                    if cached is None:
                        times = p.cpu_times()
                        cached = p
                        cached.cpu_percent(None)  # primes the interval for the next check
                        cpu += 100.0 * (times.user + times.system) / max(now - key[1], 1e-3)
                    else:
                        cpu += cached.cpu_percent(None)
                    rss += p.memory_info().rss
                seen[key] = cached
            except psutil.Error:
                continue
        self._cpu = seen
        return cpu, rss, len(seen)

    def send(self, sig: signal.Signals) -> int:
        """Send ``sig`` to the command's process group and to descendants that left it; return how many got it.

        ``killpg`` is used only when a live member of the tree is still in the group, so a group id whose processes
        are all gone (and whose number the system may reuse) is never signalled.
        """
        with self._lock:
            self.signals_sent.append(sig.name)
        tree = self.tree()
        in_group = []
        for p in tree:
            try:
                in_group += [p] if os.getpgid(p.pid) == self.pid else []
            except OSError:
                pass
        if in_group:
            try:
                os.killpg(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                in_group = []
        for p in tree:
            if p not in in_group:
                try:
                    p.send_signal(sig)  # psutil checks the pid still names the same process
                except psutil.Error:
                    pass
        return len(tree)


def _safe_name(argv: list[str]) -> str:
    """A short file-name-safe label for the log: the script's name, else the program's."""
    if argv[1:2] == ["-c"]:  # a shell command line, or `python -c code`: its first word
        first = argv[2].split()[0] if argv[0] == _SHELL and len(argv) > 2 and argv[2].split() else argv[0]
    else:
        scripts = [w for w in argv[1:] if not w.startswith("-")]
        runner = Path(argv[0]).name.startswith(("python", "bash", "sh"))
        first = scripts[0] if runner and scripts else argv[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(first).stem)[:40] or "command"


class ProcessTable:
    """The background processes of one agent session.

    ``grace`` is how long InterruptProcess waits after SIGINT and after SIGTERM; ``kill_wait`` after SIGKILL.
    Blocking calls (``start``, ``check``, ``snapshot``) take milliseconds; tools run them with ``asyncio.to_thread``.
    """

    def __init__(self, root: Path | str, log_dir: Path | str | None = None, *,
                 grace: tuple[float, float] = (5.0, 5.0), kill_wait: float = 5.0) -> None:
        if os.name != "posix":
            raise ProcessError("background processes need a POSIX system (process groups and signals)")
        self.root = Path(root).resolve()
        self.log_dir = Path(log_dir) if log_dir is not None else self.root / ".ide-agent" / "logs"
        self.grace, self.kill_wait = grace, kill_wait
        self.closed = False
        self._procs: dict[int, ManagedProcess] = {}

    # --- start -----------------------------------------------------------------------------
    def start(self, command: list[str] | str, cwd: Path | str | None = None,
              env_vars: dict[str, str] | None = None, shell: bool = False, *, display: str | None = None,
              ) -> ManagedProcess:
        """Launch ``command`` in the background and return as soon as it runs (its pid is known)."""
        if self.closed:
            raise ProcessError("this session has ended; its process table accepts no new processes")
        if isinstance(command, str):
            argv = [_SHELL, "-c", command] if shell else shlex.split(command)
        else:
            argv = [str(a) for a in command]
        if not argv:
            raise ProcessError("the command is empty")
        cwd_path = Path(cwd).resolve() if cwd is not None else self.root
        if not cwd_path.is_dir():
            raise ProcessError(f"working directory {cwd_path} does not exist")
        bad = [k for k, v in (env_vars or {}).items() if not k or "=" in k or "\0" in k + str(v)]
        if bad or any("\0" in a for a in argv):
            raise ProcessError(f"invalid environment variable name(s) {bad}" if bad else "a null byte in the command")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_vars or {})}  # progress reaches the log at once
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = _safe_name(argv)
        tmp_log = self.log_dir / f"{stamp}-{name}-starting-{os.getpid()}-{threading.get_ident()}.log"
        read_fd, write_fd = os.pipe()
        try:
            with open(tmp_log, "ab") as log:
                sup = subprocess.Popen(
                    [sys.executable or "python3", "-I", "-S", "-c", SUPERVISOR, str(write_fd), *argv],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd_path, env=env,
                    pass_fds=(write_fd,), start_new_session=True,
                )
        except OSError as exc:
            os.close(read_fd)
            tmp_log.unlink(missing_ok=True)
            raise ProcessError(f"could not start the process supervisor: {exc}") from exc
        finally:
            os.close(write_fd)
        pipe = os.fdopen(read_fd, "rb")
        first = _readline(pipe, STARTUP_TIMEOUT)
        if not first.startswith("pid "):
            pipe.close()
            if sup.poll() is None:
                sup.kill()
            sup.wait()
            tmp_log.unlink(missing_ok=True)
            why = first[6:] if first.startswith("error ") else "it did not report a pid"
            raise ProcessError(f"could not start {shlex.join(argv)}: {why}")
        pid = int(first.split()[1])
        log_path = self.log_dir / f"{stamp}-{name}-{pid}.log"
        os.replace(tmp_log, log_path)  # the open descriptors follow the file
        mp = ManagedProcess(pid=pid, argv=argv, command=display or shlex.join(argv), cwd=cwd_path,
                            log_path=log_path, started=time.time(), supervisor=sup, lines=LineCounter(log_path))
        self._procs[pid] = mp
        threading.Thread(target=_reader, args=(mp, pipe), name=f"ide-agent-reaper-{pid}", daemon=True).start()
        if self.closed:  # stop_all ran while this one was starting: it must not outlive the session
            mp.send(signal.SIGKILL)
            raise ProcessError("this session has ended; its process table accepts no new processes")
        return mp

    # --- look ------------------------------------------------------------------------------
    def get(self, pid: int) -> ManagedProcess:
        mp = self._procs.get(pid)
        if mp is None:
            known = ", ".join(str(p) for p in self._procs) or "none yet"
            raise ProcessError(
                f"pid {pid} was not started by ExecuteScript in this session, so it is not watched or signalled "
                f"here (processes of this session: {known})"
            )
        return mp

    def pids(self) -> list[int]:
        return list(self._procs)

    def check(self, pid: int, tail_lines: int = 50, *, count_budget: int = 256 << 20) -> dict[str, Any]:
        """Status, exit code, runtime, CPU %, RSS and size of the tree, output line count and the last lines."""
        mp = self.get(pid)
        cpu, rss, count = mp.usage()
        lines, complete = mp.lines.advance(count_budget) if mp.lines else (0, True)
        return {
            "pid": mp.pid, "command": mp.command, "cwd": str(mp.cwd), "status": mp.status,
            "exit_code": mp.exit_code, "signals_sent": list(mp.signals_sent), "started": mp.started, "ended": mp.ended,
            "runtime_s": round(mp.runtime(), 2), "cpu_percent": round(cpu, 1), "rss_bytes": rss,
            "rss_mb": round(rss / 2**20, 1), "processes": count, "tree_done": mp.tree_done.is_set(),
            "log_path": self.relative(mp.log_path), "output_lines": lines, "output_lines_complete": complete,
            "tail": read_tail(mp.log_path, tail_lines),
        }

    def snapshot(self, tail_lines: int = 3) -> list[dict[str, Any]]:
        """Every process of the session for the workspace state; cheap enough to call on the event loop."""
        out = []
        for pid in list(self._procs):
            try:
                out.append(self.check(pid, tail_lines, count_budget=4 << 20))
            except (ProcessError, OSError):
                continue
        return out

    def relative(self, path: Path) -> str:
        """``path`` as the model names it: relative to the workspace root when inside it."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    async def wait(self, pid: int, timeout: float, *, whole_tree: bool = False) -> bool:
        """True once the command has exited (or, with ``whole_tree``, every process of it is gone and reaped)."""
        mp = self.get(pid)
        return await mp.wait_for(mp.tree_done.is_set if whole_tree else (lambda: not mp.running), timeout)

    # --- stop ------------------------------------------------------------------------------
    async def interrupt(self, pid: int, *, force: bool = False,
                        grace: tuple[float, float] | None = None) -> dict[str, Any]:
        """SIGINT, then SIGTERM, then SIGKILL to the whole tree, each after a grace period; ``force``: SIGKILL only.

        Returns ``signal``: the signal after which nothing of the tree was left (None if it had already ended).
        """
        mp = self.get(pid)
        was_running = mp.running
        first, second = grace or self.grace
        steps = [("SIGKILL", self.kill_wait)] if force else \
            [("SIGINT", first), ("SIGTERM", second), ("SIGKILL", self.kill_wait)]
        ended_by = None
        for name, wait in steps:
            if mp.tree_done.is_set():
                break
            await asyncio.to_thread(mp.send, SIGNALS[name])
            if await mp.wait_for(mp.tree_done.is_set, wait):
                ended_by = name
                break
        if not mp.tree_done.is_set() and mp.supervisor.poll() is None:
            mp.supervisor.kill()  # last resort: something survived SIGKILL (uninterruptible sleep); stop watching
            await mp.wait_for(mp.tree_done.is_set, 2.0)
        left = await asyncio.to_thread(mp.tree)
        return {"pid": pid, "command": mp.command, "status": mp.status, "exit_code": mp.exit_code,
                "signal": ended_by, "was_running": was_running, "remaining": [p.pid for p in left],
                "log_path": self.relative(mp.log_path), "runtime_s": round(mp.runtime(), 2)}

    async def stop_all(self, grace: tuple[float, float] | None = None) -> list[dict[str, Any]]:
        """Stop every process of the session (session deleted, server shutting down); accept no new ones."""
        self.closed = True  # set before listing: a start() in flight either is listed or sees it (see start)
        alive = [pid for pid, mp in list(self._procs.items()) if not mp.tree_done.is_set()]
        return list(await asyncio.gather(*(self.interrupt(pid, grace=grace) for pid in alive)))

    def kill_all(self) -> None:
        """Synchronous SIGKILL of every tree, for atexit or a signal handler where no loop runs."""
        self.closed = True
        for mp in list(self._procs.values()):
            if not mp.tree_done.is_set():
                mp.send(signal.SIGKILL)


def _readline(pipe: Any, timeout: float) -> str:
    ready, _, _ = select.select([pipe], [], [], timeout)
    return pipe.readline().decode(errors="replace").strip() if ready else ""


def _reader(mp: ManagedProcess, pipe: Any) -> None:
    """Reader thread: records the command's exit, then reaps the supervisor once the whole tree is gone."""
    exit_seen = False
    with pipe:
        for raw in pipe:
            line = raw.decode(errors="replace").strip()
            if line.startswith("exit "):
                exit_seen = True
                mp._record_exit(int(line.split()[1]))
    mp.supervisor.wait()
    if not exit_seen:  # the supervisor itself was killed: the exit code is unknown
        mp._record_exit(None)
    mp.tree_done.set()
    mp._notify()
