#!/usr/bin/env bash
# Backfill benchmark: how fast does the real rowhook binary deliver an hour
# of appointment changes it has never sent?
#
#   bash bench/backfill.sh [ROWS]        (default 1000000)
#   BENCH_ENGINE=InnoDB bash bench/backfill.sh 200000
#
# Loads ROWS appointments changed during the last hour into a fresh database
# rowhook_bench_backfill, subscribes bench_receiver (loopback, 200 at once)
# to Appointment from two hours ago, prints the EXPLAIN of rowhook's page
# statements, then runs `rowhook run --once --max-lookback 0` (one window, every
# page, then exit) under measure.py and prints throughput, CPU and memory.
# Fails unless every batch arrived and DateTimeStart passed every row.
# Leaves its figures in bench/results/ for limit.sh and peer.sh.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=$(bench_rows "${1:-}")
BATCHES=$(((ROWS + BATCH - 1) / BATCH))

bench_build
bench_context
bench_create_db
bench_load "$ROWS"
ENGINE=$(bench_engine)
bench_start_receiver
bench_subscribe

# --- The page queries, as the server will run them --------------------------
# rowhook's statements (src/db/mysql/page.rs) with literal values; the page's
# select list casts every column, which does not change the plan, so `*`
# stands in for it. rowhook reads three batches a page. On MyISAM (an index
# on DateTStamp alone) a page is the first rows by stamp, then the rows of
# the last stamp by key; a page from the middle is shown, after the cursor
# (stamp, key). On InnoDB, whose index ends with the key, a page is one
# statement in (stamp, key) order.
READ=$((3 * BATCH))
NOW=$(sql -e "SELECT CAST(NOW() AS CHAR)")
MID=$(sql -e "SELECT CONCAT(CAST(DateTStamp AS CHAR), '|', AptNum) FROM appointment
              ORDER BY DateTStamp, AptNum LIMIT 1 OFFSET $((ROWS / 2))")
MID_STAMP=${MID%|*} MID_KEY=${MID#*|}
AFTER_CURSOR="FROM appointment WHERE DateTStamp >= '$MID_STAMP' AND DateTStamp < '$NOW'
              AND (DateTStamp > '$MID_STAMP' OR AptNum > $MID_KEY)"
if [[ $ENGINE == InnoDB ]]; then
  QUERIES=("SELECT * FROM appointment WHERE DateTStamp >= '$SUB_START' AND DateTStamp < '$NOW'
            ORDER BY DateTStamp, AptNum LIMIT $READ"
           "SELECT * $AFTER_CURSOR ORDER BY DateTStamp, AptNum LIMIT $READ")
else
  LAST=$(sql -e "SELECT CAST(MAX(s) AS CHAR) FROM (SELECT DateTStamp AS s $AFTER_CURSOR
                 ORDER BY DateTStamp LIMIT $((READ + 1))) AS page")
  QUERIES=("SELECT * FROM appointment WHERE DateTStamp >= '$SUB_START' AND DateTStamp < '$NOW'
            ORDER BY DateTStamp LIMIT $((READ + 1))"
           "SELECT * $AFTER_CURSOR ORDER BY DateTStamp LIMIT $((READ + 1))"
           "SELECT * $AFTER_CURSOR AND DateTStamp = '$LAST' ORDER BY AptNum LIMIT $READ")
fi
say "== EXPLAIN of rowhook's page statements ($ENGINE)"
for query in "${QUERIES[@]}"; do
  say "$(tr -s ' \n' ' ' <<< "$query")"
  sql_table -e "EXPLAIN $query" >&2
done
say "   Each statement walks the DateTStamp index and stops after the rows it"
say "   needs ('range', or 'ref' for one second) with no 'Using filesort',"
say "   except the last second's rows on MyISAM, sorted by AptNum alone."

# --- The run ----------------------------------------------------------------
say "== rowhook run --once --max-lookback 0 ($(thousands "$ROWS") rows, $ENGINE)"
SERVER_CPU_BEFORE=$(server_cpu_s)
STATUS=0
bench_measure "$WORK/agent.log" "$ROWHOOK" run --once --max-lookback 0 || STATUS=$?
SERVER_CPU_AFTER=$(server_cpu_s)
RECEIVER_CPU=$(proc_cpu_s "$RECEIVER_PID")
bench_stop_receiver
AFTER=$(bench_watermark)

# --- Checks: a fast run that lost rows or kept its watermark is no result ----
[[ $STATUS == 0 ]] || die "rowhook exited with $STATUS"
grep -q 'processed=1 failed=0' "$WORK/agent.log" || die "rowhook did not report one processed, none failed"
[[ $RECEIVED_REQUESTS == "$BATCHES" ]] || die "receiver got $RECEIVED_REQUESTS requests, expected $BATCHES"
[[ $(bench_watermark_passed) == 1 ]] || die "DateTimeStart ($AFTER) has not passed every row"

# --- Report -----------------------------------------------------------------
ROWS_PER_S=$(div "$ROWS" "$WALL_S")
SERVER_CPU="n/a (server not local)"
[[ -n $SERVER_CPU_BEFORE && -n $SERVER_CPU_AFTER ]] &&
  SERVER_CPU="$(calc %.2f "$SERVER_CPU_AFTER - $SERVER_CPU_BEFORE") s"
mkdir -p "$RESULTS"
cat > "$RESULTS/backfill-$ROWS-$ENGINE.env" <<EOF
BACKFILL_DATE='$(date -u '+%Y-%m-%d %H:%M UTC')'
BACKFILL_ROWS=$ROWS
BACKFILL_ROWS_PER_S=$ROWS_PER_S
BACKFILL_WALL_S=$WALL_S
EOF
cat <<EOF

== backfill: rowhook run --once, $(thousands "$ROWS") rows, appointment on $ENGINE
rows              $(thousands "$ROWS")
batches           $BATCHES (receiver answered $RECEIVED_REQUESTS)
wall              $(calc %.2f "$WALL_S") s
rows/s            $(thousands "$ROWS_PER_S")
batches/s         $(div "$BATCHES" "$WALL_S" 2)
bytes sent        $(thousands "$RECEIVED_BYTES") ($(div "$RECEIVED_BYTES" "$ROWS") per row, $(div "$RECEIVED_BYTES" "$BATCHES") per batch)
bytes/s           $(thousands "$(div "$RECEIVED_BYTES" "$WALL_S")") ($(calc %.2f "$RECEIVED_BYTES / $WALL_S / 1e6") MB/s)
agent CPU         $(calc %.2f "$CPU_S") s (user $(calc %.2f "$USER_S"), sys $(calc %.2f "$SYS_S"); $(calc %.0f "100 * $CPU_S / $WALL_S")% of wall)
agent peak RSS    $(rss_mib) MiB
database CPU      $SERVER_CPU (mariadbd, same interval, all clients)
receiver CPU      $RECEIVER_CPU s
DateTimeStart     $SUB_START -> $AFTER
EOF
