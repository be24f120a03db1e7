"""Timing shared by the benchmarks: tasks measured side by side, taking turns, so machine noise hits all alike."""

from __future__ import annotations

import time
from collections.abc import Callable


def interleaved(tasks: dict[str, Callable[[], None]], warmup: int, repeats: int) -> dict[str, list[float]]:
    """Seconds of each task's timed runs, the tasks taking turns (A, B, C, A, ...) after ``warmup`` untimed turns."""
    for _ in range(warmup):
        for task in tasks.values():
            task()
    seconds: dict[str, list[float]] = {name: [] for name in tasks}
    for _ in range(repeats):
        for name, task in tasks.items():
            started = time.perf_counter()
            task()
            seconds[name].append(time.perf_counter() - started)
    return seconds
