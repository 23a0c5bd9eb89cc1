"""Benchmark: stream pass-through, raw SDK vs a WebSocket client of the running server.

    python -m bench.stream [--deltas 20000] [--runs 5] [--profile server.prof]

The fake OpenAI provider (its own process) emits ``--deltas`` text deltas as fast as it can. The
*ideal* is the raw ``openai`` SDK reading them: ``AsyncOpenAI.responses.create(stream=True)`` from
this process, timed from the call to the end of the stream. The *measured* path is the product: a
real ``jupyter server`` with the extension, a session, and a WebSocket client here that sends the
prompt and is timed until ``done``, having received every delta's text as ``text_delta`` events
(the server may carry several deltas in one event; the text must arrive complete).

Runs alternate raw/WebSocket after one warm-up of each (SDK imports, first connections); each
WebSocket run uses a fresh session. CPU seconds of the server and the fake per run are reported, so
where the time goes is visible without a profiler; ``--profile`` also runs the server under cProfile
and prints its top functions. The last line is the ratio WebSocket/raw (median); target <= 1.10.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import statistics
import time
from typing import Any

import psutil

from bench.common import FakeProcess, JupyterServer, StreamClient, bench_turn, machine

TARGET = 1.10


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


async def raw_sdk_run(client: Any, deltas: int) -> tuple[float, int, int]:
    """Time the raw SDK reading one streamed response; (seconds, deltas, characters)."""
    started = time.perf_counter()
    stream = await client.responses.create(
        model="gpt-5", store=False, stream=True,
        input=[{"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": bench_turn(deltas=deltas)}]}],
    )
    count = chars = 0
    async for event in stream:
        if event.type == "response.output_text.delta":
            count += 1
            chars += len(event.delta)
    return time.perf_counter() - started, count, chars


async def ws_run(server: JupyterServer, deltas: int) -> tuple[float, int, int, str]:
    """Time one prompt over the socket until ``done``; (seconds, text_delta events, characters, reason)."""
    sid = await asyncio.to_thread(server.create_session, "stream bench")
    try:
        async with StreamClient(server, sid) as client:
            stats = await client.run_turn(bench_turn(deltas=deltas))
    finally:
        await asyncio.to_thread(server.delete_session, sid)
    if stats.errors:
        raise SystemExit(f"the turn failed: {stats.errors}")
    return stats.seconds, stats.text_deltas, stats.chars, stats.reason


async def main(deltas: int, runs: int, profile: str | None, code_dir: str | None = None) -> None:
    from openai import AsyncOpenAI

    expected_chars = len("word ") * deltas
    with FakeProcess() as fake, \
            JupyterServer(providers=fake.providers(), profile=profile, code_dir=code_dir) as server:
        client = AsyncOpenAI(api_key="sk-bench", base_url=fake.base_url, max_retries=0, timeout=120)
        server_proc, fake_proc, me = psutil.Process(server.pid), psutil.Process(fake.pid), psutil.Process()
        print(f"machine: {machine()}")
        print(f"fake pid {fake.pid}, server pid {server.pid}; {deltas} deltas per run, {runs} runs each")
        if code_dir:
            print(f"server code: {code_dir} (a prototype), not the installed package")
        await raw_sdk_run(client, deltas)
        await ws_run(server, deltas)  # warm-up: SDK import and connections inside the server
        raw_times: list[float] = []
        ws_times: list[float] = []
        raw_cpu: list[float] = []
        server_cpu: list[float] = []
        for i in range(runs):
            fake_cpu, own_cpu = cpu_seconds(fake_proc), cpu_seconds(me)
            seconds, count, chars = await raw_sdk_run(client, deltas)
            assert count == deltas and chars == expected_chars, (count, chars)
            raw_times.append(seconds)
            raw_cpu.append(cpu_seconds(me) - own_cpu)
            print(f"run {i + 1} raw SDK:   {seconds:.3f} s  {deltas / seconds:8.0f} deltas/s  "
                  f"(SDK cpu {raw_cpu[-1]:.2f} s, fake cpu {cpu_seconds(fake_proc) - fake_cpu:.2f} s)")

            fake_cpu, srv_cpu = cpu_seconds(fake_proc), cpu_seconds(server_proc)
            seconds, events, chars, reason = await ws_run(server, deltas)
            if chars != expected_chars or reason != "completed":
                raise SystemExit(f"the socket got {chars} of {expected_chars} characters ({reason})")
            ws_times.append(seconds)
            server_cpu.append(cpu_seconds(server_proc) - srv_cpu)
            print(f"run {i + 1} WebSocket: {seconds:.3f} s  {deltas / seconds:8.0f} deltas/s  "
                  f"({events} text_delta events; server cpu {server_cpu[-1]:.2f} s, "
                  f"fake cpu {cpu_seconds(fake_proc) - fake_cpu:.2f} s)")
        await client.close()
    raw, ws = statistics.median(raw_times), statistics.median(ws_times)
    if profile:
        print(f"\nserver profile ({profile}), top 25 by own time:")
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    print(f"raw SDK (median of {runs}):   {raw:.3f} s, {deltas / raw:.0f} deltas/s")
    print(f"WebSocket (median of {runs}): {ws:.3f} s, {deltas / ws:.0f} deltas/s")
    raw_cpu_median, server_cpu_median = statistics.median(raw_cpu), statistics.median(server_cpu)
    print(f"cpu per run (median): raw SDK client {raw_cpu_median:.2f} s, server "
          f"{server_cpu_median:.2f} s (ratio {server_cpu_median / raw_cpu_median:.2f}; "
          "less sensitive to other load on the machine than wall time)")
    print(f"overhead {100 * (ws / raw - 1):.1f}% (target <= {100 * (TARGET - 1):.0f}%)")
    print(f"ratio WebSocket/raw SDK: {ws / raw:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", help="run the server under cProfile, writing the stats here")
    parser.add_argument("--code-dir", help="a directory with a modified jupyterlab_ide_agent package for the "
                        "server to import instead of the installed one (to measure a prototype fix)")
    args = parser.parse_args()
    asyncio.run(main(args.deltas, args.runs, args.profile, args.code_dir))
