#!/usr/bin/env python3
"""The poller an IT contractor would write in an afternoon: the baseline
rowhook is compared with in bench/peer.sh.

    python3 bench/peer.py SUBSCRIPTION_NUM

Deliberately naive, and deliberately not broken: a synchronous loop that
reads the subscription, pages through the watched table with LIMIT/OFFSET,
POSTs each page with requests.post(json=rows) and, once every page got 200,
moves DateTimeStart to the time it started. It is what rowhook replaces; do
not copy it. (OFFSET paging re-reads every skipped row on each page, and
ORDER BY DateTStamp alone does not fix the order of rows sharing a second,
so a page boundary can repeat or skip some of them.)

Connection: BENCH_MYSQL_HOST / _PORT / _USER, MYSQL_PWD, BENCH_DB (set by
bench/lib.sh).
"""

import datetime
import os
import sys

import pymysql
import pymysql.cursors
import requests

PAGE = 1000


def jsonable(row):
    """requests' json= cannot encode datetimes: send them as Open Dental's text."""
    return {
        column: value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime.datetime)
        else value.isoformat() if isinstance(value, datetime.date)
        else value
        for column, value in row.items()
    }


def main():
    subscription = int(sys.argv[1])
    db = pymysql.connect(
        host=os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("BENCH_MYSQL_PORT", "3306")),
        user=os.environ.get("BENCH_MYSQL_USER", "root"),
        password=os.environ.get("MYSQL_PWD", ""),
        database=os.environ["BENCH_DB"],
        cursorclass=pymysql.cursors.DictCursor,
        autocommit=True,
    )
    cur = db.cursor()
    cur.execute(
        "SELECT EndPointUrl, CustomerKey, DateTimeStart, NOW() AS now "
        "FROM apisubscription WHERE ApiSubscriptionNum = %s",
        (subscription,),
    )
    sub = cur.fetchone()

    sent = batches = 0
    while True:
        cur.execute(
            "SELECT * FROM appointment WHERE DateTStamp >= %s "
            "ORDER BY DateTStamp LIMIT 1000 OFFSET %s",
            (sub["DateTimeStart"], sent),
        )
        rows = cur.fetchall()
        if not rows:
            break
        reply = requests.post(
            sub["EndPointUrl"],
            json=[jsonable(row) for row in rows],
            headers={"Authorization": sub["CustomerKey"]},
            timeout=30,
        )
        if reply.status_code != 200:
            sys.exit(f"peer: HTTP {reply.status_code}; DateTimeStart left alone")
        sent += len(rows)
        batches += 1
        if len(rows) < PAGE:
            break

    cur.execute(
        "UPDATE apisubscription SET DateTimeStart = %s WHERE ApiSubscriptionNum = %s",
        (sub["now"], subscription),
    )
    print(f"peer: {sent} rows in {batches} batches")


if __name__ == "__main__":
    main()
