"""Ray jobs of one agent session: submitted with the Ray Jobs API, watched, stopped. Ray is imported lazily.

Decisions, and why:

- **The cluster's own scheduler.** A job is ``JobSubmissionClient.submit_job``; it shows on the Ray dashboard like any
  other, and Ray decides where it runs. We only keep what the session needs to talk about it.
- **The working directory is uploaded** (``runtime_env["working_dir"]``), so a remote cluster runs the code the agent
  sees. Ray zips it (it reads ``.gitignore`` and ``.rayignore`` itself) and refuses packages above its GCS limit
  (~512 MiB) with a clear message; heavy directories (``.git``, ``node_modules``, virtualenvs, caches, our logs) are
  excluded up front and ``c.IDEAgent.ray_excludes`` adds more. For big data, or a cluster on this machine or on a
  shared file system, ``c.IDEAgent.ray_upload_working_dir = False`` uploads nothing: the entrypoint starts with
  ``cd <the same absolute path>``.
- **Only the tool's env_vars go to the cluster** (plus ``PYTHONUNBUFFERED``): unlike a local script, a Ray job does
  not inherit the server's environment, so API keys never leave this machine.
- **Jobs outlive the chat.** A training run on a cluster is often meant to finish after the conversation; deleting a
  session does not stop its Ray jobs (local scripts do stop). The tools say so. Each job carries
  ``metadata.ide_agent_session``, so after a server restart the reopened session re-adopts its jobs when named.
- **The loop never waits on the cluster** (see :mod:`.ray_client`): an unreachable head costs a bounded wait.
- **Logs are mirrored, not re-downloaded.** A follower thread per running job streams ``tail_job_logs`` into
  ``.ide-agent/logs/<stamp>-ray-<id>.log``; tails and line counts are read from disk like a local script's, cheap
  even when the sidebar polls. When the job ends, ``get_job_logs`` rewrites the mirror once, complete.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .processes import LineCounter, read_tail
from .ray_client import RayClient, RayJobError, RayJobNotFound, RayJobTimeout, off_loop
from .state import SKIP_DIRS

__all__ = ["RayJob", "RayJobError", "RayJobNotFound", "RayJobTable"]

TERMINAL = {"STOPPED", "SUCCEEDED", "FAILED"}
SESSION_KEY = "ide_agent_session"


@dataclass
class RayJob:
    id: str
    command: str
    cwd: str
    log_path: Path
    submitted: float
    status: str = "SUBMITTING"  # then Ray's: PENDING RUNNING STOPPED SUCCEEDED FAILED
    message: str = ""
    start_time: float | None = None
    end_time: float | None = None
    exit_code: int | None = None
    checked: float = 0.0
    stale: str | None = None  # why the last status refresh failed
    final_logs: bool = False
    lines: LineCounter = field(init=False)
    follower: threading.Thread | None = None
    followed_at: float = 0.0
    cancel_follow: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.lines = LineCounter(self.log_path)

    @property
    def active(self) -> bool:
        return self.status not in TERMINAL

    def runtime(self) -> float:
        start = self.start_time or self.submitted
        return max(0.0, (self.end_time or time.time()) - start) if self.status != "PENDING" else 0.0

    def update(self, info: Any) -> None:
        status = getattr(info.status, "value", str(info.status))
        self.status, self.message = status, info.message or ""
        self.start_time = info.start_time / 1000 if info.start_time else None
        self.end_time = info.end_time / 1000 if info.end_time else None
        self.exit_code = info.driver_exit_code
        self.checked, self.stale = time.time(), None


class RayJobTable:
    """The Ray jobs of one session, on the cluster whose Jobs API is at ``address``."""

    def __init__(self, address: str, root: Path | str, session_id: str, *, log_dir: Path | None = None,
                 timeout: float = 10.0, upload_timeout: float = 300.0, upload_working_dir: bool = True,
                 excludes: list[str] | None = None, stop_wait: float = 30.0) -> None:
        self.cluster = RayClient(address, timeout, upload_timeout)
        self.address = self.cluster.address
        self.root = Path(root).resolve()
        self.session_id = session_id
        self.log_dir = log_dir or self.root / ".ide-agent" / "logs"
        self.stop_wait = stop_wait
        self.upload_working_dir = upload_working_dir
        self.excludes = sorted(SKIP_DIRS) + list(excludes or [])
        self.closed = False
        self.usage: dict[str, list[float]] | None = None
        self._jobs: dict[str, RayJob] = {}

    # --- submit ------------------------------------------------------------------------------
    async def submit(self, entrypoint: str, cwd: Path, display: str, env_vars: dict[str, str] | None = None,
                     resources: dict[str, float] | None = None) -> dict[str, Any]:
        """Submit ``entrypoint`` (run in ``cwd``) and return its row; the job starts on the cluster's schedule."""
        if self.closed:
            raise RayJobError("this session has ended; it submits no new Ray jobs")
        cwd = Path(cwd)
        env = {"PYTHONUNBUFFERED": "1", **(env_vars or {})}
        runtime_env: dict[str, Any] = {"env_vars": env}
        if self.upload_working_dir:
            runtime_env.update(working_dir=str(cwd), excludes=self.excludes)
        else:
            entrypoint = f"cd {shlex.quote(str(cwd))} || exit 1; {entrypoint}"  # also a list of commands
        job_id = f"ray-{secrets.token_hex(5)}"
        job = RayJob(job_id, display, self._relative(cwd), self._new_log(job_id), time.time())
        self._jobs[job_id] = job  # before the call: a submission that times out may still have reached Ray
        extra = {f"entrypoint_{k}": v for k, v in (resources or {}).items()}
        try:
            await self.cluster.call(
                "submit_job", entrypoint=entrypoint, runtime_env=runtime_env, submission_id=job_id,
                metadata={SESSION_KEY: self.session_id, "ide_agent_command": display[:500]},
                timeout=self.cluster.upload_timeout + self.cluster.timeout, **extra)
        except RayJobTimeout as exc:
            job.stale = str(exc)
            raise RayJobError(f"{exc} The submission of {job_id} may still go through; "
                              f"CheckProcess(pid={job_id!r}) will tell.") from None
        except RayJobError:
            del self._jobs[job_id]
            raise
        job.status = "PENDING"
        self._follow(job)
        return self.row(job, 0)

    # --- look ----------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        return list(self._jobs)

    async def get(self, job_id: str) -> RayJob:
        """This session's job ``job_id``; one the session submitted before a server restart is adopted again."""
        job = self._jobs.get(job_id)
        if job is not None:
            return job
        known = ", ".join(self._jobs) or "none yet"
        missing = RayJobNotFound(f"{job_id!r} is not a Ray job of this session (its Ray jobs: {known})")
        if not job_id.startswith("ray-") or self.closed:
            raise missing
        try:
            info = await self.cluster.call("get_job_info", job_id)
        except RayJobError as exc:
            if "does not exist" in str(exc) or "404" in str(exc):
                raise missing from None
            raise
        if (info.metadata or {}).get(SESSION_KEY) != self.session_id:
            raise missing
        command = (info.metadata or {}).get("ide_agent_command") or info.entrypoint
        job = self._jobs.setdefault(job_id, RayJob(job_id, command, "", self._new_log(job_id), time.time()))
        job.update(info)
        self._follow(job)
        return job

    async def refresh(self, job: RayJob) -> None:
        """Ask Ray for the job's status; keep the last known one (and say why) when the cluster does not answer."""
        try:
            job.update(await self.cluster.call("get_job_info", job.id))
        except RayJobError as exc:
            job.stale = str(exc)
            return
        except Exception as exc:  # an SDK reply we do not understand: the same as no answer
            job.stale = f"{type(exc).__name__}: {exc}"
            return
        if not job.active and not job.final_logs:
            await self._final_logs(job)
        elif job.active and (job.follower is None or not job.follower.is_alive()) and \
                time.time() - job.followed_at > 5:
            self._follow(job)  # the log stream broke (head restarted?): follow again from the start

    async def check(self, job_id: str, tail_lines: int = 50) -> dict[str, Any]:
        job = await self.get(job_id)
        await asyncio.gather(self.refresh(job), self._refresh_usage())
        return self.row(job, tail_lines)

    async def _refresh_usage(self) -> None:
        try:
            self.usage = await self.cluster.call("cluster_usage")
        except Exception:  # resource use is a bonus; the job's status already says whether the cluster answers
            pass

    async def snapshot(self, tail_lines: int = 3, max_wait: float = 2.0, max_age: float = 1.5) -> list[dict[str, Any]]:
        """Every job of the session for the workspace state; refreshes running ones, waiting at most ``max_wait``."""
        now = time.time()
        due = [j for j in self._jobs.values() if (j.active or not j.final_logs) and now - j.checked > max_age
               and not (j.stale and now - j.checked < 30)]  # a cluster that just failed is not asked every poll
        if due:
            for j in due:
                j.checked = now  # one refresh at a time per job, even with several pollers
            calls = [self.refresh(j) for j in due] + ([self._refresh_usage()] if any(j.active for j in due) else [])
            await asyncio.wait([asyncio.ensure_future(c) for c in calls], timeout=max_wait)
        return [self.row(j, tail_lines) for j in self._jobs.values()]

    def row(self, job: RayJob, tail_lines: int) -> dict[str, Any]:
        """The job as the workspace state and the sidebar show it, beside local processes (``pid`` is its id)."""
        lines, complete = job.lines.advance(4 << 20)
        return {
            "pid": job.id, "target": "ray", "command": job.command, "cwd": job.cwd,
            "status": job.status.lower(), "ray_status": job.status, "message": job.message,
            "exit_code": job.exit_code, "started": job.start_time or job.submitted, "ended": job.end_time,
            "runtime_s": round(job.runtime(), 2), "cpu_percent": None, "rss_mb": None,
            "log_path": self._relative(job.log_path), "output_lines": lines, "output_lines_complete": complete,
            "tail": read_tail(job.log_path, tail_lines), "address": self.address,
            "dashboard_url": f"{self.address}/#/jobs/{job.id}", "cluster": self.usage, "stale": job.stale,
        }

    # --- stop ----------------------------------------------------------------------------------
    async def stop(self, job_id: str) -> dict[str, Any]:
        """Ask Ray to stop the job (SIGTERM to its driver, SIGKILL after Ray's grace) and wait for a final status."""
        job = await self.get(job_id)
        await self.refresh(job)
        was_running = job.active
        if was_running:
            await self.cluster.call("stop_job", job.id)
            deadline = time.monotonic() + self.stop_wait
            while job.active and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                await self.refresh(job)
        return {**self.row(job, 20), "was_running": was_running}

    def close(self) -> None:
        """The session ends: stop mirroring logs. Its jobs keep running on the cluster (see the module doc)."""
        self.closed = True
        for job in self._jobs.values():
            if job.cancel_follow is not None:
                job.cancel_follow()

    # --- logs ------------------------------------------------------------------------------------
    def _follow(self, job: RayJob) -> None:
        if self.closed or job.final_logs:
            return
        job.followed_at = time.time()
        job.follower = threading.Thread(target=self._follower, args=(job,), name=f"ide-agent-{job.id}", daemon=True)
        job.follower.start()

    def _follower(self, job: RayJob) -> None:
        """Thread: stream the job's log into its mirror file until the job ends or the session closes."""
        async def pump() -> None:
            client = self.cluster.sdk()  # built by the submission (or adoption) that started this follower
            # this loop is the follower thread's own: blocking file writes hold nobody up
            with open(job.log_path, "w", encoding="utf-8", errors="replace") as fh:  # noqa: ASYNC230
                job.lines = LineCounter(job.log_path)
                async for chunk in client.tail_job_logs(job.id):
                    fh.write(chunk)
                    fh.flush()

        loop = asyncio.new_event_loop()
        task = loop.create_task(pump())

        def cancel() -> None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the follower already ended and closed its loop
                pass

        job.cancel_follow = cancel
        if self.closed or job.final_logs:
            task.cancel()
        try:
            loop.run_until_complete(task)
        except BaseException:  # noqa: BLE001 - cancelled, or the stream broke: refresh() decides what next
            pass
        finally:
            loop.close()

    async def _final_logs(self, job: RayJob) -> None:
        """The job has ended: replace the mirror with Ray's complete log, once."""
        if job.cancel_follow is not None:
            job.cancel_follow()
        try:
            text = await self.cluster.call("get_job_logs", job.id)
        except RayJobError:
            return  # keep the mirror; the next refresh tries again

        def replace() -> None:
            if job.follower is not None:
                job.follower.join(5.0)  # it ends at once: cancelled, and the job's stream has closed
            tmp = job.log_path.with_suffix(".tmp")
            try:
                tmp.write_text(text or "", encoding="utf-8", errors="replace")
                os.replace(tmp, job.log_path)
            except OSError:
                return  # disk full or the log dir removed: keep what the mirror has
            job.lines, job.final_logs = LineCounter(job.log_path), True

        await off_loop(replace)

    def _new_log(self, job_id: str) -> Path:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{job_id}.log"
        log.touch()
        return log

    def _relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.root).as_posix() or "."
        except ValueError:
            return str(path)
