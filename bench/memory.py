"""Benchmark: resident memory of the server with 10 idle sessions and with 4 streaming.

    python -m bench.memory [--idle 10] [--streams 4] [--seconds 15] [--deltas 20000]

A real ``jupyter server`` with the extension and the fake OpenAI provider (its own process); the
RSS of the server process (psutil) is read:

1. fresh: right after start-up;
2. baseline: after one warm-up session ran a short turn and was deleted (the provider SDK imported,
   its client and connection pool made), which any server that served one prompt pays once;
3. with ``--idle`` sessions that each ran one short turn and now sit idle;
4. while ``--streams`` more sessions stream turns of ``--deltas`` text deltas back to back, each
   read by its own WebSocket client in a load process (sampled every 0.2 s: peak);
5. after the streams stopped (what the finished turns left resident), with the number of events the
   sessions logged and the size of the session store (SQLite, in the benchmark's folder).

Target: report (no threshold). The last line gives the MB per idle and per streaming session.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time

from bench.common import FakeProcess, JupyterServer, LoadProcess, StreamClient, machine


def settle(server: JupyterServer, seconds: float = 1.0) -> float:
    time.sleep(seconds)
    return server.rss_mb()


async def short_turns(server: JupyterServer, sessions: list[str]) -> None:
    async def one(sid: str) -> None:
        async with StreamClient(server, sid) as client:
            stats = await client.run_turn("Say hello.")
            if stats.reason != "completed":
                raise SystemExit(f"a short turn ended with {stats.reason}: {stats.errors}")

    await asyncio.gather(*(one(sid) for sid in sessions))


def main(idle: int, streams: int, seconds: float, deltas: int, code_dir: str | None = None) -> None:
    print(f"machine: {machine()}")
    with FakeProcess() as fake, JupyterServer(providers=fake.providers(), code_dir=code_dir) as server:
        if code_dir:
            print(f"server code: {code_dir} (a prototype), not the installed package")
        fresh = settle(server)
        print(f"fresh server:                {fresh:7.1f} MB")
        warm = server.create_session("warm-up")
        asyncio.run(short_turns(server, [warm]))
        server.delete_session(warm)
        base = settle(server)
        print(f"baseline (after one turn):   {base:7.1f} MB")

        idle_ids = [server.create_session(f"idle {i}") for i in range(idle)]
        asyncio.run(short_turns(server, idle_ids))
        with_idle = settle(server, 2.0)
        per_idle = (with_idle - base) / idle
        print(f"{idle} idle sessions:            {with_idle:7.1f} MB  (+{with_idle - base:.1f} MB, "
              f"{per_idle:.2f} MB per session)")

        stream_ids = [server.create_session(f"stream {i}") for i in range(streams)]
        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(server.rss_mb())
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        with LoadProcess(server, stream_ids, deltas=deltas) as load:
            sampler.start()
            time.sleep(seconds)
            stop.set()
            sampler.join()
            result = load.stop()
        peak = max(samples)
        per_stream = (peak - with_idle) / streams
        print(f"{streams} sessions streaming:      {peak:7.1f} MB peak (+{peak - with_idle:.1f} MB over the idle "
              f"state, {per_stream:.2f} MB per streaming session); {result.get('deltas', 0):.0f} deltas "
              f"streamed in {result.get('seconds', 0):.1f} s, {result.get('turns_completed', 0)} turns completed")
        after = settle(server, 2.0)
        print(f"after the streams stopped:   {after:7.1f} MB  (+{after - with_idle:.1f} MB still resident)")
        sessions = server.get_json("ide-agent/sessions")["sessions"]
        events = sum(s["last_seq"] for s in sessions)
        assert server.workdir is not None
        store = sum(p.stat().st_size for p in server.workdir.glob("sessions.sqlite3*")) / 2**20
        print(f"events logged across {len(sessions)} sessions: {events}; session store on disk {store:.1f} MB")
        for sid in idle_ids + stream_ids:
            server.delete_session(sid)
        deleted = settle(server, 2.0)
        print(f"after deleting them all:     {deleted:7.1f} MB")
    print(f"memory (report): baseline {base:.1f} MB; {per_idle:.2f} MB per idle session; "
          f"{per_stream:.2f} MB per streaming session (peak); {after - with_idle:.1f} MB still resident after")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=10)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0, help="how long the sessions stream")
    parser.add_argument("--deltas", type=int, default=20_000, help="text deltas per streamed turn")
    parser.add_argument("--code-dir", help="a directory with a modified jupyterlab_ide_agent package for the "
                        "server to import instead of the installed one (to measure a prototype fix)")
    args = parser.parse_args()
    main(args.idle, args.streams, args.seconds, args.deltas, args.code_dir)
