#!/usr/bin/env python3
"""Run one command and report what it cost: wall seconds, CPU seconds
(user + system) and peak resident memory of the child.

    python3 bench/measure.py [--out FILE] [--log FILE] [--stdin FILE] -- COMMAND [ARGS...]

The child's stdout and stderr pass through untouched, or with --log go
(both) to FILE, so a chatty child does not bury the figures; --stdin feeds
it FILE. The figures go
to stderr as one line, and with --out also to FILE as shell assignments
(WALL_S=..., CPU_S=..., USER_S=..., SYS_S=..., RSS_KIB=..., EXIT=...) for a
script to `source`. Exits with the child's status.

CPU and memory are the kernel's own accounting for the child (and whatever
it waited for), not a sample: the rusage that wait4() returns for that one
child, which is getrusage(RUSAGE_CHILDREN) narrowed to it. (RUSAGE_CHILDREN
itself would also count anything this interpreter's launcher ran before
exec'ing it, such as a pyenv shim's helpers.) On Linux ru_maxrss is in KiB.

One limit: the kernel starts a child's peak at the size of the process that
forked it, this interpreter (~15 MiB), so a child smaller than that reads
as the interpreter's size. The figures say so (RSS_FLOOR=1) when it happens;
rowhook and a Python client are both larger.
"""

import argparse
import os
import resource
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="also write the figures here as shell assignments")
    parser.add_argument("--log", help="send the child's stdout and stderr here")
    parser.add_argument("--stdin", help="feed the child this file")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    log = open(args.log, "ab") if args.log else None
    stdin = open(args.stdin, "rb") if args.stdin else None
    own_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    child = subprocess.Popen(command, stdin=stdin, stdout=log, stderr=log)
    _, raw_status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    status = os.waitstatus_to_exitcode(raw_status)
    for opened in (log, stdin):
        if opened:
            opened.close()

    figures = {
        "WALL_S": f"{wall:.3f}",
        "CPU_S": f"{usage.ru_utime + usage.ru_stime:.3f}",
        "USER_S": f"{usage.ru_utime:.3f}",
        "SYS_S": f"{usage.ru_stime:.3f}",
        "RSS_KIB": str(usage.ru_maxrss),
        "RSS_FLOOR": str(int(usage.ru_maxrss <= own_rss)),
        "EXIT": str(status),
    }
    at_most = "<= " if usage.ru_maxrss <= own_rss else ""
    print(
        f"measure: wall {figures['WALL_S']} s, cpu {figures['CPU_S']} s "
        f"(user {figures['USER_S']}, sys {figures['SYS_S']}), "
        f"peak rss {at_most}{usage.ru_maxrss / 1024:.1f} MiB, exit {status}",
        file=sys.stderr,
    )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.writelines(f"{name}={value}\n" for name, value in figures.items())
    # A signal death (negative status) becomes the shell's 128 + signal.
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
