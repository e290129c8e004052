#!/usr/bin/env python3
"""The front desk for bench/steady.sh: changes RATE rows per second for
SECONDS, round-robin over appointment, patient and patfield.

    python3 bench/writers.py RATE SECONDS ROWS_PER_TABLE

Every 1/(RATE/20) s one autocommitted UPDATE changes the next 20 rows (by
primary key, wrapping at ROWS_PER_TABLE) of the next table, writing
`lag@<UNIX_TIMESTAMP(NOW(6))>` into a text column: bench_receiver --lag
reads it back and measures commit-to-arrival. Statements run on a fixed
schedule; if one is late, the next ones catch up. Prints one line of
JSON: rows changed per table, seconds, and how late the latest statement was.

Connection: BENCH_MYSQL_HOST / _PORT / _USER, MYSQL_PWD, BENCH_DB.
"""

import json
import os
import sys
import time

import pymysql

# (table, primary key, the column that carries the marker)
TABLES = [("appointment", "AptNum", "Note"), ("patient", "PatNum", "Email"),
          ("patfield", "PatFieldNum", "FieldValue")]
PER_STATEMENT = 20


def main():
    rate, seconds, rows = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    db = pymysql.connect(
        host=os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("BENCH_MYSQL_PORT", "3306")),
        user=os.environ.get("BENCH_MYSQL_USER", "root"),
        password=os.environ.get("MYSQL_PWD", ""),
        database=os.environ["BENCH_DB"],
        autocommit=True,
    )
    cur = db.cursor()
    interval = PER_STATEMENT / rate
    next_key = [1] * len(TABLES)
    changed = [0] * len(TABLES)
    late = 0.0
    started = time.monotonic()
    n = 0
    while n * interval < seconds:
        due = started + n * interval
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        else:
            late = max(late, now - due)
        t = n % len(TABLES)
        table, key, column = TABLES[t]
        first = next_key[t]
        cur.execute(
            f"UPDATE {table} SET {column} = CONCAT('lag@', UNIX_TIMESTAMP(NOW(6))) "
            f"WHERE {key} BETWEEN %s AND %s",
            (first, first + PER_STATEMENT - 1),
        )
        changed[t] += cur.rowcount
        next_key[t] = first + PER_STATEMENT if first + PER_STATEMENT <= rows else 1
        n += 1
    elapsed = time.monotonic() - started
    figures = {table: changed[i] for i, (table, _, _) in enumerate(TABLES)}
    figures.update(seconds=round(elapsed, 3), statements=n, late_max_ms=round(late * 1000))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
