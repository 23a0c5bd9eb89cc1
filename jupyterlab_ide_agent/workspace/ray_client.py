"""Talking to a Ray cluster's Jobs API without ever blocking the event loop, and with Ray imported only when used.

``ray.job_submission.JobSubmissionClient`` is synchronous (``requests``, with no default timeout; its constructor
already asks the cluster for its version). So every call runs in one small dedicated thread pool under
``asyncio.wait_for``: a hung cluster neither holds the loop nor starves the default executor that
``asyncio.to_thread`` shares with the rest of the server. Each HTTP request also gets a timeout of its own (a
subclass adds it in the SDK's single request method), so a thread left behind by a timed-out call ends soon after.
Ray being an optional extra, the import happens on the first call, in that pool, and its absence is a clear error.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ENABLE_HINT = ('pip install "jupyterlab-ide-agent[ray]" in the Jupyter server\'s environment and set '
               'c.IDEAgent.ray_address = "http://<ray-head>:8265" (the Ray dashboard / Jobs API address), then restart '
               'Jupyter')
RAY_MISSING = f"Ray is not installed in the Jupyter server's environment. To run scripts on Ray, {ENABLE_HINT}."
NOT_CONFIGURED = (f"No Ray cluster is configured for this server. To run scripts on Ray, {ENABLE_HINT}. "
                  "Until then use target 'local'.")
_pool: ThreadPoolExecutor | None = None


class RayJobError(Exception):
    """An expected failure (cluster unreachable, Ray missing, job refused); the message says what to do."""


class RayJobNotFound(RayJobError):
    """The id names no job of this session."""


class RayJobTimeout(RayJobError):
    """The cluster did not answer in time: what was asked may still happen."""


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ide-agent-ray")
    return _pool


async def off_loop(fn: Any, *args: Any) -> Any:
    """Run a blocking ``fn`` in the Ray pool (log files, thread joins: never the default executor)."""
    return await asyncio.get_running_loop().run_in_executor(_executor(), fn, *args)


@functools.cache
def _client_class() -> type:
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise RayJobError(RAY_MISSING) from exc

    class TimedJobClient(JobSubmissionClient):  # type: ignore[misc,valid-type]
        """The SDK's client with a timeout on each HTTP request, and the cluster's resource use."""

        def __init__(self, address: str, timeout: float, upload_timeout: float) -> None:
            self.timeouts = timeout, upload_timeout
            super().__init__(address)

        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            connect, upload = self.timeouts  # a package PUT may take a while to be stored; reads must not
            kwargs.setdefault("timeout", (connect, upload if method == "PUT" else connect))
            return super()._do_request(method, endpoint, **kwargs)

        def cluster_usage(self) -> dict[str, list[float]] | None:
            """{resource: [used, total]} from the dashboard's cluster status (what ``ray status`` prints)."""
            r = self._do_request("GET", "/api/cluster_status")
            report = (((r.json() or {}).get("data") or {}).get("clusterStatus") or {}).get("loadMetricsReport") or {}
            names = {"CPU": "CPU", "GPU": "GPU", "memory": "memory", "objectStoreMemory": "object_store_memory"}
            usage = report.get("usage") or {}
            return {names[k]: [float(v[0]), float(v[1])] for k, v in usage.items() if k in names} or None

    return TimedJobClient


class RayClient:
    """The Jobs API at ``address`` (the dashboard's URL); ``call`` maps every failure to a :class:`RayJobError`."""

    def __init__(self, address: str, timeout: float = 10.0, upload_timeout: float = 300.0) -> None:
        self.address = address.rstrip("/")
        self.timeout, self.upload_timeout = timeout, upload_timeout
        self._client: Any = None

    def sdk(self) -> Any:
        """The SDK client, built on first use (in a pool thread: building it is two requests to the cluster)."""
        if self._client is None:
            self._client = _client_class()(self.address, self.timeout, self.upload_timeout)
        return self._client

    async def call(self, method: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """``sdk().<method>(*args, **kwargs)`` off the loop, given up after ``timeout`` (default: 3 requests' worth)."""
        wait = timeout or self.timeout * 3
        try:
            return await asyncio.wait_for(off_loop(lambda: getattr(self.sdk(), method)(*args, **kwargs)), wait)
        except RayJobError:
            raise
        except TimeoutError:
            raise RayJobTimeout(f"The Ray cluster at {self.address} did not answer within {wait:.0f} s. "
                                "Check that its head node is up and c.IDEAgent.ray_address is right.") from None
        except (ConnectionError, OSError) as exc:  # requests' errors are OSErrors too
            raise RayJobError(f"Cannot reach the Ray cluster at {self.address} ({exc}). Is the head running "
                              "(`ray start --head`) and is c.IDEAgent.ray_address its dashboard address (port 8265 "
                              "by default)?") from None
        except Exception as exc:  # RuntimeError from the SDK (HTTP errors), ValueError (package too large), ...
            raise RayJobError(f"Ray: {type(exc).__name__}: {exc}") from None
