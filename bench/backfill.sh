#!/usr/bin/env bash
# Backfill benchmark: how fast does `rowhook run --once` deliver an hour of
# appointment changes it has never sent?
#
#   bash bench/backfill.sh [ROWS]        (default 200000)
#   BENCH_ENGINE=InnoDB bash bench/backfill.sh 1000000
#
# Builds release, loads ROWS appointments changed during the last hour into
# a fresh database `rowhook_bench`, subscribes bench_receiver to Appointment
# from two hours ago, runs one pass of the real binary under measure.py and
# prints throughput, CPU and memory. Fails unless every batch arrived and
# DateTimeStart moved forward. See bench/README.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=$(bench_rows "${1:-200000}")
BATCHES=$(((ROWS + BATCH - 1) / BATCH))

bench_build
bench_create_db
bench_load "$ROWS"
ENGINE=$(bench_engine)
bench_start_receiver
bench_subscribe

# --- The page query, as the server will run it ------------------------------
# rowhook's page query (src/db/mysql.rs, fetch_page) with literal values; its
# select list casts every column, which does not change the plan, so `*`
# stands in for it here. Three pages: the first of this backfill, one from
# the middle (with the keyset clause rowhook adds after the first page), and
# a steady-state window of one second, what the daemon reads every tick.
NOW=$(sql -e "SELECT CAST(NOW() AS CHAR)")
MID=$(sql -e "SELECT CONCAT(CAST(DateTStamp AS CHAR), '|', AptNum) FROM appointment
              ORDER BY DateTStamp, AptNum LIMIT 1 OFFSET $((ROWS / 2))")
MID_STAMP=${MID%|*} MID_KEY=${MID#*|}
LAST_SECOND=$(sql -e "SELECT CONCAT(MAX(DateTStamp), '|', MAX(DateTStamp) + INTERVAL 1 SECOND) FROM appointment")
explain() {
  say "-- $1"
  say "   $2"
  sql_table -e "EXPLAIN $2" >&2
}
say "== EXPLAIN of rowhook's page query ($ENGINE)"
explain "first page of this backfill: the whole window [DateTimeStart, NOW())" \
  "SELECT * FROM appointment WHERE DateTStamp >= '$SUB_START' AND DateTStamp < '$NOW' ORDER BY DateTStamp, AptNum LIMIT $BATCH"
explain "a page from the middle: after the cursor (stamp, key) of row $((ROWS / 2))" \
  "SELECT * FROM appointment WHERE DateTStamp >= '$MID_STAMP' AND DateTStamp < '$NOW' AND (DateTStamp > '$MID_STAMP' OR AptNum > $MID_KEY) ORDER BY DateTStamp, AptNum LIMIT $BATCH"
explain "steady state: a one-second window, as the daemon reads each tick" \
  "SELECT * FROM appointment WHERE DateTStamp >= '${LAST_SECOND%|*}' AND DateTStamp < '${LAST_SECOND#*|}' ORDER BY DateTStamp, AptNum LIMIT $BATCH"
if sql -e "EXPLAIN SELECT * FROM appointment WHERE DateTStamp >= '$MID_STAMP' AND DateTStamp < '$NOW'
           ORDER BY DateTStamp, AptNum LIMIT $BATCH" | grep -q filesort; then
  say "   'Using filesort': the DateTStamp index is used to find the window, but"
  say "   it does not hold AptNum in order ($ENGINE does not append the primary"
  say "   key), so every page reads and sorts all the window's remaining rows to"
  say "   return $BATCH of them. A backfill costs ~ROWS^2/2000 row reads."
else
  say "   No filesort: the index yields rows in (DateTStamp, AptNum) order and"
  say "   each page stops after $BATCH rows."
fi

# --- The run ----------------------------------------------------------------
say "== rowhook run --once --max-lookback 0 ($(thousands "$ROWS") rows, $ENGINE)"
SERVER_CPU_BEFORE=$(server_cpu_s)
STATUS=0
bench_measure "$WORK/agent.log" "$ROWHOOK" run --once --max-lookback 0 || STATUS=$?
SERVER_CPU_AFTER=$(server_cpu_s)
bench_stop_receiver
AFTER=$(bench_watermark)

# --- Checks: a fast run that lost rows or kept its watermark is no result ----
[[ $STATUS == 0 ]] || die "rowhook exited with $STATUS"
grep -q 'processed=1 failed=0' "$WORK/agent.log" || die "rowhook did not report one processed, none failed"
[[ $RECEIVED_REQUESTS == "$BATCHES" ]] || die "receiver got $RECEIVED_REQUESTS requests, expected $BATCHES"
[[ $AFTER > $SUB_START ]] || die "DateTimeStart did not advance (still $AFTER)"

# --- Report -----------------------------------------------------------------
ROWS_PER_S=$(div "$ROWS" "$WALL_S")
if [[ -n $SERVER_CPU_BEFORE && -n $SERVER_CPU_AFTER ]]; then
  SERVER_CPU=$(awk -v a="$SERVER_CPU_BEFORE" -v b="$SERVER_CPU_AFTER" 'BEGIN { printf "%.2f s", b - a }')
else
  SERVER_CPU="n/a (server not local)"
fi
cat <<EOF

== backfill: rowhook run --once, $(thousands "$ROWS") rows, appointment on $ENGINE
rows              $(thousands "$ROWS")
batches           $BATCHES (receiver answered $RECEIVED_REQUESTS)
wall              $(calc %.2f "$WALL_S") s
rows/s            $(thousands "$ROWS_PER_S")
batches/s         $(div "$BATCHES" "$WALL_S" 2)
bytes sent        $(thousands "$RECEIVED_BYTES") ($(div "$RECEIVED_BYTES" "$ROWS") per row, $(div "$RECEIVED_BYTES" "$BATCHES") per batch)
bytes/s           $(thousands "$(div "$RECEIVED_BYTES" "$WALL_S")") ($(calc %.2f "$RECEIVED_BYTES / $WALL_S / 1e6") MB/s)
agent CPU         $(calc %.2f "$CPU_S") s (user $(calc %.2f "$USER_S"), sys $(calc %.2f "$SYS_S"); $(calc %.1f "100 * $CPU_S / $WALL_S")% of wall)
agent peak RSS    $(rss_mib) MiB
database CPU      $SERVER_CPU (mariadbd, same interval)
DateTimeStart     $SUB_START -> $AFTER

For bench/peer.sh:  ROWHOOK_ROWS_PER_S=$ROWS_PER_S
EOF
