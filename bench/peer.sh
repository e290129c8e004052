#!/usr/bin/env bash
# Peer benchmark: the same backfill as bench/backfill.sh, done by the naive
# Python poller in bench/peer.py (pymysql + requests, OFFSET paging, one
# synchronous POST per page, a new connection per POST).
#
#   bash bench/peer.sh [ROWS]                        (default 200000)
#   ROWHOOK_ROWS_PER_S=1234 bash bench/peer.sh 200000   (also prints the speed-up)
#
# Same database, rows, subscription and receiver as backfill.sh (bench/lib.sh),
# so the figures compare directly. See bench/README.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=$(bench_rows "${1:-200000}")
BATCHES=$(((ROWS + BATCH - 1) / BATCH))

# The peer's two libraries, from PyPI, only when missing.
if ! python3 -c 'import pymysql, requests' 2> /dev/null; then
  say "== pip install pymysql requests"
  python3 -m pip install --quiet --disable-pip-version-check pymysql requests
fi

bench_build
bench_create_db
bench_load "$ROWS"
ENGINE=$(bench_engine)
bench_start_receiver
bench_subscribe

say "== peer.py ($(thousands "$ROWS") rows, $ENGINE)"
SERVER_CPU_BEFORE=$(server_cpu_s)
STATUS=0
BENCH_MYSQL_HOST=$BENCH_MYSQL_HOST BENCH_MYSQL_PORT=$BENCH_MYSQL_PORT \
  BENCH_MYSQL_USER=$BENCH_MYSQL_USER BENCH_DB=$BENCH_DB \
  bench_measure "$WORK/agent.log" python3 "$BENCH_DIR/peer.py" "$SUB_ID" || STATUS=$?
SERVER_CPU_AFTER=$(server_cpu_s)
bench_stop_receiver
AFTER=$(bench_watermark)

[[ $STATUS == 0 ]] || die "peer.py exited with $STATUS"
[[ $RECEIVED_REQUESTS == "$BATCHES" ]] || die "receiver got $RECEIVED_REQUESTS requests, expected $BATCHES"
[[ $AFTER > $SUB_START ]] || die "DateTimeStart did not advance (still $AFTER)"

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
peer CPU          $(calc %.2f "$CPU_S") s (user $(calc %.2f "$USER_S"), sys $(calc %.2f "$SYS_S"); $(calc %.1f "100 * $CPU_S / $WALL_S")% of wall)
peer peak RSS     $(rss_mib) MiB
database CPU      $SERVER_CPU (mariadbd, same interval)
EOF
if [[ -n ${ROWHOOK_ROWS_PER_S:-} ]]; then
  echo "speed-up          rowhook $(thousands "$ROWHOOK_ROWS_PER_S") rows/s / peer $(thousands "$ROWS_PER_S") rows/s = $(calc %.2f "$ROWHOOK_ROWS_PER_S / $ROWS_PER_S")x"
fi
