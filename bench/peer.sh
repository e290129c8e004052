#!/usr/bin/env bash
# Peer benchmark: the same backfill as bench/backfill.sh, done by the naive
# Python poller in bench/peer.py (pymysql + requests, OFFSET paging, one
# synchronous POST per page, a new connection per POST).
#
#   bash bench/peer.sh [ROWS]            (default 1000000)
#   BENCH_ENGINE=InnoDB bash bench/peer.sh 200000
#
# Same rows, subscription and receiver as backfill.sh (bench/lib.sh), in a
# fresh database rowhook_bench_peer. Prints the peer's figures and
# rowhook's speed-up over it, with rowhook's rate for the same ROWS and
# engine from bench/results/ (running bench/backfill.sh first if needed).
# OFFSET paging is quadratic: a million rows take the peer a long time.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=$(bench_rows "${1:-}")
BATCHES=$(((ROWS + BATCH - 1) / BATCH))

bench_build
bench_python
bench_rowhook_rate "$ROWS"
bench_context
bench_create_db
bench_load "$ROWS"
ENGINE=$(bench_engine)
bench_start_receiver
bench_subscribe

say "== peer.py ($(thousands "$ROWS") rows, $ENGINE)"
SERVER_CPU_BEFORE=$(server_cpu_s)
STATUS=0
bench_measure "$WORK/agent.log" "$PY" "$BENCH_DIR/peer.py" "$SUB_ID" || STATUS=$?
SERVER_CPU_AFTER=$(server_cpu_s)
RECEIVER_CPU=$(proc_cpu_s "$RECEIVER_PID")
bench_stop_receiver
AFTER=$(bench_watermark)

[[ $STATUS == 0 ]] || die "peer.py exited with $STATUS"
[[ $RECEIVED_REQUESTS == "$BATCHES" ]] || die "receiver got $RECEIVED_REQUESTS requests, expected $BATCHES"
[[ $(bench_watermark_passed) == 1 ]] || die "DateTimeStart ($AFTER) has not passed every row"

ROWS_PER_S=$(div "$ROWS" "$WALL_S")
SERVER_CPU="n/a (server not local)"
[[ -n $SERVER_CPU_BEFORE && -n $SERVER_CPU_AFTER ]] &&
  SERVER_CPU="$(calc %.2f "$SERVER_CPU_AFTER - $SERVER_CPU_BEFORE") s"
cat <<EOF

== peer: naive Python poller, $(thousands "$ROWS") rows, appointment on $ENGINE
rows              $(thousands "$ROWS")
batches           $BATCHES (receiver answered $RECEIVED_REQUESTS)
wall              $(calc %.2f "$WALL_S") s
rows/s            $(thousands "$ROWS_PER_S")
batches/s         $(div "$BATCHES" "$WALL_S" 2)
bytes sent        $(thousands "$RECEIVED_BYTES") ($(div "$RECEIVED_BYTES" "$ROWS") per row)
bytes/s           $(thousands "$(div "$RECEIVED_BYTES" "$WALL_S")") ($(calc %.2f "$RECEIVED_BYTES / $WALL_S / 1e6") MB/s)
peer CPU          $(calc %.2f "$CPU_S") s (user $(calc %.2f "$USER_S"), sys $(calc %.2f "$SYS_S"); $(calc %.0f "100 * $CPU_S / $WALL_S")% of wall)
peer peak RSS     $(rss_mib) MiB
database CPU      $SERVER_CPU (mariadbd, same interval, all clients)
receiver CPU      $RECEIVER_CPU s
rowhook           $(thousands "$ROWHOOK_ROWS_PER_S") rows/s ($ROWHOOK_MEASURED)
speed-up          $(calc %.1f "$ROWHOOK_ROWS_PER_S / $ROWS_PER_S")x
EOF
