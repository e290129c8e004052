#!/usr/bin/env python3
"""How fast bench_receiver accepts rowhook-sized batches: one ceiling in
bench/limit.sh.

    python3 bench/post_loop.py PORT SECONDS

Builds one body the way rowhook does (the first 1000 rows of the window,
in (DateTStamp, AptNum) order, as a compact JSON array of objects), then
POSTs it to http://127.0.0.1:PORT/bench again and again over one
keep-alive connection for SECONDS, and prints one line of JSON:
{"requests":N,"body_bytes":N,"rows_per_body":N,"seconds":S}.

The body is encoded once, so the loop costs the client little more than a
socket write and a short reply to parse; whether the client kept up is
visible in its CPU time (bench/limit.sh prints it). Database settings as in
bench/peer.py.
"""

import datetime
import http.client
import json
import os
import sys
import time

import pymysql


def first_batch():
    db = pymysql.connect(
        host=os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("BENCH_MYSQL_PORT", "3306")),
        user=os.environ.get("BENCH_MYSQL_USER", "root"),
        password=os.environ.get("MYSQL_PWD", ""),
        database=os.environ["BENCH_DB"],
        cursorclass=pymysql.cursors.DictCursor,
    )
    with db.cursor() as cur:
        cur.execute("SELECT * FROM appointment ORDER BY DateTStamp, AptNum LIMIT 1000")
        rows = cur.fetchall()
    db.close()

    def text(value):
        if isinstance(value, datetime.datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return value

    return [{k: text(v) for k, v in row.items()} for row in rows]


def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    rows = first_batch()
    body = json.dumps(rows, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    requests = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        conn.request("POST", "/bench", body=body, headers=headers)
        reply = conn.getresponse()
        reply.read()
        if reply.status != 200:
            sys.exit(f"post_loop: HTTP {reply.status}")
        requests += 1
    elapsed = time.perf_counter() - started
    conn.close()
    print(json.dumps({
        "requests": requests,
        "body_bytes": len(body),
        "rows_per_body": len(rows),
        "seconds": round(elapsed, 3),
    }))


if __name__ == "__main__":
    main()
