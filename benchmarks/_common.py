"""Shared timing helpers of the benchmark scripts (run them as scripts)."""

from __future__ import annotations

import argparse
import time

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def parser(doc: str, n: int) -> argparse.ArgumentParser:
    """The options every benchmark takes: --n, --repeat, --no-jax, --clock."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--n", type=int, default=n)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-jax", action="store_true")
    ap.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="wall: time.perf_counter; cpu: time.process_time, the CPU time of this process (all its threads), "
        "steadier on a loaded machine",
    )
    return ap


def best(fn, repeat: int, clock: str = "wall") -> float:
    """Smallest time of ``repeat`` calls of ``fn``."""
    tick = CLOCKS[clock]
    times = []
    for _ in range(repeat):
        t0 = tick()
        fn()
        times.append(tick() - t0)
    return min(times)


def both_clocks(fn, repeat: int) -> tuple[float, float]:
    """Best CPU time and best wall time of ``repeat`` calls of ``fn``."""
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall)
