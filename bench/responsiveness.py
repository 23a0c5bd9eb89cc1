"""Benchmark: latency of a cheap REST call while 4 sessions stream at full speed.

    python -m bench.responsiveness [--streams 4] [--seconds 15] [--interval 0.01]

A real ``jupyter server`` with the extension and the fake OpenAI provider (its own process). This
process probes ``GET ide-agent/status`` (token auth, one kept-alive connection, blocking
``http.client``, one request every ``--interval`` s) first on the idle server, then while a load
process keeps ``--streams`` sessions streaming turns of 50,000 text deltas back to back, each read
by its own WebSocket client, as fast as the fake and the server can go. The probe and the load are
separate processes, so the probe's own timing is not delayed by the load's clients. The last line
is p99 under load against the target (< 50 ms), as a ratio.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import time

import psutil

from bench.common import FakeProcess, JupyterServer, LoadProcess, machine, percentile

TARGET_MS = 50.0


def probe(server: JupyterServer, seconds: float, interval: float) -> list[float]:
    """Latencies (ms) of GET ide-agent/status for ``seconds``."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = server.headers()
    latencies = []
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        started = time.perf_counter()
        conn.request("GET", "/ide-agent/status", headers=headers)
        response = conn.getresponse()
        body = response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200 or not json.loads(body).get("ready"):
            raise SystemExit(f"status answered {response.status}: {body[:200]!r}")
        time.sleep(interval)
    conn.close()
    return latencies


def describe(name: str, ms: list[float]) -> str:
    return (f"{name}: {len(ms)} calls  p50 {percentile(ms, 50):.2f} ms  p90 {percentile(ms, 90):.2f}  "
            f"p99 {percentile(ms, 99):.2f}  max {max(ms):.2f}  mean {statistics.fmean(ms):.2f}")


def main(streams: int, seconds: float, interval: float, deltas: int, code_dir: str | None = None) -> None:
    print(f"machine: {machine()}")
    with FakeProcess() as fake, JupyterServer(providers=fake.providers(), code_dir=code_dir) as server:
        if code_dir:
            print(f"server code: {code_dir} (a prototype), not the installed package")
        server_proc = psutil.Process(server.pid)
        probe(server, 1.0, interval)  # warm-up: first requests, imports
        idle = probe(server, min(seconds, 5.0), interval)
        print(describe("idle server       ", idle))
        sessions = [server.create_session(f"stream {i}") for i in range(streams)]
        with LoadProcess(server, sessions, deltas=deltas) as load:
            cpu_before = server_proc.cpu_times()
            wall_before = time.perf_counter()
            loaded = probe(server, seconds, interval)
            cpu_after = server_proc.cpu_times()
            wall = time.perf_counter() - wall_before
            result = load.stop()
        busy = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / wall
        print(describe(f"{streams} sessions streaming", loaded))
        print(f"load: {result.get('deltas', 0) / max(result.get('seconds', 1), 1e-9):.0f} deltas/s received "
              f"over {streams} sockets ({result.get('turns_completed', 0)} turns completed); server process "
              f"{100 * busy:.0f}% of one core")
        for sid in sessions:
            server.delete_session(sid)
    p99 = percentile(loaded, 99)
    verdict = "met" if p99 < TARGET_MS else "MISSED"
    print(f"p99 under load {p99:.2f} ms (p50 {percentile(loaded, 50):.2f} ms; idle p99 "
          f"{percentile(idle, 99):.2f} ms); target < {TARGET_MS:.0f} ms: {verdict}")
    print(f"ratio p99 under load / {TARGET_MS:.0f} ms target: {p99 / TARGET_MS:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--interval", type=float, default=0.01, help="pause between probes, seconds")
    parser.add_argument("--deltas", type=int, default=50_000, help="text deltas per streamed turn")
    parser.add_argument("--code-dir", help="a directory with a modified jupyterlab_ide_agent package for the "
                        "server to import instead of the installed one (to measure a prototype fix)")
    args = parser.parse_args()
    main(args.streams, args.seconds, args.interval, args.deltas, args.code_dir)
