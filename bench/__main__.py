"""Run every benchmark, one subprocess each, and print their last lines (the ratios) together.

    python -m bench                      # all of them, about 3 minutes on 2 cores
    python -m bench stream cells         # some of them
    python -m bench --list

Each benchmark's own output is shown as it runs; the summary at the end has one line per benchmark:
its target and the last line it printed. The exit status is non-zero if any benchmark crashed (a
missed target is reported, not an error: the benchmarks measure, the tests assert).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import REPO, clean_env, machine

#: name -> target, in the order they run
BENCHMARKS = {
    "stream": "WebSocket/raw SDK <= 1.10",
    "cells": "agent/raw <= 1.3",
    "responsiveness": "p99 < 50 ms (ratio to 50 ms < 1)",
    "memory": "report",
    "ensemble": "measured/ideal <= 1.05",
    "prompt_budget": "max prompt / budget: always under budget (< 1)",
}


def run(name: str) -> tuple[int, str, float]:
    """Run ``python -m bench.<name>``, echoing its output; (exit code, last line, seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", f"bench.{name}"], cwd=REPO, env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    last = ""
    for line in proc.stdout:
        print(f"  {line}", end="", flush=True)
        if line.strip():
            last = line.strip()
    return proc.wait(), last, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and their targets")
    args = parser.parse_args()
    if args.list:
        for name, target in BENCHMARKS.items():
            print(f"{name:15} {target}")
        return
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    print(f"machine: {machine()}")
    results = []
    for name in names:
        print(f"\n=== bench.{name} (target: {BENCHMARKS[name]})", flush=True)
        results.append((name, *run(name)))
    print("\n=== summary")
    failed = False
    for name, code, last, seconds in results:
        status = "" if code == 0 else f" [CRASHED: exit {code}]"
        failed |= code != 0
        print(f"{name:15} {seconds:6.1f} s  {last}{status}")
        print(f"{'':15}          target: {BENCHMARKS[name]}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
