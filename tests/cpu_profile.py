"""Optional pytest plugin: CPU seconds (user+sys, this process and its waited-for children) per test.

Enabled with ``-p tests.cpu_profile`` and ``PTOK_CPU_PROFILE=<file.tsv>``; each test appends one row
``nodeid<TAB>cpu_s<TAB>wall_s`` (setup, call and teardown together, so a shared fixture's build is
charged to the first test that needs it). CPU seconds, unlike wall time, do not grow with the
machine's load, so they compare runs on a busy shared machine. Summarise with
``python -m tests.cpu_profile <file.tsv>``.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections import defaultdict

import pytest


def _cpu_seconds() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    out = os.environ.get("PTOK_CPU_PROFILE")
    cpu0, wall0 = _cpu_seconds(), time.monotonic()
    yield
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(f"{item.nodeid}\t{_cpu_seconds() - cpu0:.2f}\t{time.monotonic() - wall0:.2f}\n")


def summarise(path: str, top: int = 25) -> str:
    by_file: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            nodeid, cpu, wall = line.rstrip("\n").split("\t")
            rows.append((float(cpu), float(wall), nodeid))
            entry = by_file[nodeid.split("::")[0]]
            entry[0] += float(cpu)
            entry[1] += float(wall)
            entry[2] += 1
    total_cpu = sum(r[0] for r in rows)
    total_wall = sum(r[1] for r in rows)
    lines = [f"{len(rows)} tests, {total_cpu:.0f} CPU s, {total_wall:.0f} wall s", "",
             "| file | tests | CPU s | wall s |", "|---|---:|---:|---:|"]
    for name, (cpu, wall, n) in sorted(by_file.items(), key=lambda kv: -kv[1][0])[:top]:
        lines.append(f"| {name} | {n} | {cpu:.1f} | {wall:.1f} |")
    lines += ["", "| test | CPU s | wall s |", "|---|---:|---:|"]
    for cpu, wall, nodeid in sorted(rows, reverse=True)[:top]:
        lines.append(f"| {nodeid} | {cpu:.1f} | {wall:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(sys.argv[1]))
