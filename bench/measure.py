#!/usr/bin/env python3
"""Run one command and report what it cost: wall seconds, CPU seconds
(user + system) and peak resident memory of the child.

    python3 bench/measure.py [--out FILE] [--log FILE] -- COMMAND [ARGS...]

The child's stdout and stderr pass through untouched, or with --log go
(both) to FILE, so a chatty child does not bury the figures. The figures go
to stderr as one line, and with --out also to FILE as shell assignments
(WALL_S=..., CPU_S=..., USER_S=..., SYS_S=..., RSS_KIB=..., EXIT=...) for a
script to `source`. Exits with the child's status.

CPU and memory come from getrusage(RUSAGE_CHILDREN) after the child was
waited for, so they are the kernel's own accounting for the child (and any
process it waited for), not a sample. On Linux ru_maxrss is in KiB.
"""

import argparse
import resource
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="also write the figures here as shell assignments")
    parser.add_argument("--log", help="send the child's stdout and stderr here")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    log = open(args.log, "ab") if args.log else None
    started = time.perf_counter()
    status = subprocess.call(command, stdout=log, stderr=log)
    wall = time.perf_counter() - started
    if log:
        log.close()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)

    figures = {
        "WALL_S": f"{wall:.3f}",
        "CPU_S": f"{usage.ru_utime + usage.ru_stime:.3f}",
        "USER_S": f"{usage.ru_utime:.3f}",
        "SYS_S": f"{usage.ru_stime:.3f}",
        "RSS_KIB": str(usage.ru_maxrss),
        "EXIT": str(status),
    }
    print(
        f"measure: wall {figures['WALL_S']} s, cpu {figures['CPU_S']} s "
        f"(user {figures['USER_S']}, sys {figures['SYS_S']}), "
        f"peak rss {usage.ru_maxrss / 1024:.1f} MiB, exit {status}",
        file=sys.stderr,
    )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.writelines(f"{name}={value}\n" for name, value in figures.items())
    # A signal death (negative status) becomes the shell's 128 + signal.
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
