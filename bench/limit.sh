#!/usr/bin/env bash
# Ceilings: how fast could any agent go on this machine with this data?
#
#   bash bench/limit.sh [ROWS]           (default 1000000)
#   BENCH_ENGINE=InnoDB bash bench/limit.sh 200000
#
# Same rows as bench/backfill.sh (bench/lib.sh), in a fresh database
# rowhook_bench_limit. Measures, with no HTTP:
#  (a) the mariadb CLI with --quick reading the whole window in rowhook's
#      order, one query, rows streamed to /dev/null;
#  (b) a minimal sqlx loop (examples/bench_read.rs) doing the same;
#  (c) the same sqlx loop reading in keyset pages of 3000 (three batches,
#      as rowhook reads them), the statements rowhook sends: the database's
#      share of a backfill however fast the agent is (not a plain client,
#      so not a ceiling);
# and, with no database,
#  (d) bench_receiver's acceptance rate for 1000-row bodies posted back to
#      back over one keep-alive connection by bench/post_loop.py.
# Prints the lower ceiling of (a), (b) and (d), and rowhook's backfill rate
# for the same ROWS and engine as a fraction of it (from bench/results/,
# running bench/backfill.sh first if it has no figure yet).
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=$(bench_rows "${1:-}")
POST_SECONDS=${POST_SECONDS:-5}

bench_build
bench_python
bench_rowhook_rate "$ROWS"
bench_context
bench_create_db
bench_load "$ROWS"
ENGINE=$(bench_engine)
# The window a backfill reads: DateTimeStart two hours ago .. now.
START=$(sql -e "SELECT CAST(NOW() - INTERVAL 2 HOUR AS CHAR)")
STOP=$(sql -e "SELECT CAST(NOW() AS CHAR)")

# Runs "$@" under measure.py; sets RPS (ROWS / wall), WALL_S and CPU_S.
rate() {
  : > "$WORK/out"
  bench_measure "$WORK/out" "$@" || die "$1 failed: $(tail -3 "$WORK/out")"
  RPS=$(div "$ROWS" "$WALL_S")
}

say "== (a) mariadb --quick: SELECT * ... ORDER BY DateTStamp, AptNum, one query"
echo "SELECT * FROM appointment WHERE DateTStamp >= '$START' AND DateTStamp < '$STOP'
      ORDER BY DateTStamp, AptNum" > "$WORK/one.sql"
BENCH_STDIN="$WORK/one.sql" rate mariadb -h "$BENCH_MYSQL_HOST" -P "$BENCH_MYSQL_PORT" \
  -u "$BENCH_MYSQL_USER" --batch --quick "$BENCH_DB"
CLI_RPS=$RPS CLI_NOTE="$(calc %.2f "$WALL_S") s; client CPU $(calc %.2f "$CPU_S") s"

say "== (b) sqlx, the same query, rows streamed"
rate "$READER" "$DATABASE_URL" stream "$START" "$STOP"
SQLX_RPS=$RPS SQLX_NOTE="$(calc %.2f "$WALL_S") s; client CPU $(calc %.2f "$CPU_S") s"
[[ $(json_field rows < "$WORK/out") == "$ROWS" ]] || die "bench_read stream read $(json_field rows < "$WORK/out") rows"

say "== (c) sqlx, keyset pages of $((3 * BATCH))"
SERVER_CPU_BEFORE=$(server_cpu_s)
rate "$READER" "$DATABASE_URL" pages "$START" "$STOP"
PAGES_RPS=$RPS PAGES_NOTE="$(calc %.2f "$WALL_S") s, $(json_field queries < "$WORK/out") queries; client CPU $(calc %.2f "$CPU_S") s, mariadbd $(calc %.2f "$(server_cpu_s) - $SERVER_CPU_BEFORE") s"
[[ $(json_field rows < "$WORK/out") == "$ROWS" ]] || die "bench_read pages read $(json_field rows < "$WORK/out") rows"

bench_start_receiver
say "== (d) post_loop.py: one 1000-row body, back to back for $POST_SECONDS s"
bench_measure "$WORK/post.out" "$PY" "$BENCH_DIR/post_loop.py" "$RECEIVER_PORT" "$POST_SECONDS" ||
  die "post_loop.py failed: $(tail -3 "$WORK/post.out")"
POST_CPU=$CPU_S
RECEIVER_CPU=$(proc_cpu_s "$RECEIVER_PID")
bench_stop_receiver
POST_JSON=$(grep '^{' "$WORK/post.out")
POSTS=$(json_field requests <<< "$POST_JSON") BODY_BYTES=$(json_field body_bytes <<< "$POST_JSON")
BODY_ROWS=$(json_field rows_per_body <<< "$POST_JSON") POST_WALL=$(json_field seconds <<< "$POST_JSON")
[[ $RECEIVED_REQUESTS == "$POSTS" ]] || die "receiver counted $RECEIVED_REQUESTS requests, client sent $POSTS"
POST_RPS=$(calc %.0f "$POSTS * $BODY_ROWS / $POST_WALL")

# --- Report -----------------------------------------------------------------
LOWER=$CLI_RPS LOWER_NAME="(a) read, mariadb --quick"
((SQLX_RPS < LOWER)) && LOWER=$SQLX_RPS LOWER_NAME="(b) read, sqlx"
((POST_RPS < LOWER)) && LOWER=$POST_RPS LOWER_NAME="(d) receive"
row() { printf '%-36s %10s rows/s  %s\n' "$1" "$(thousands "$2")" "$3"; }
echo
echo "== limits: $(thousands "$ROWS") rows, appointment on $ENGINE"
row "(a) read: mariadb --quick" "$CLI_RPS" "($CLI_NOTE)"
row "(b) read: sqlx, one query" "$SQLX_RPS" "($SQLX_NOTE)"
row "(c) read: sqlx, keyset pages" "$PAGES_RPS" "($PAGES_NOTE)"
row "(d) receive: $BODY_ROWS-row bodies" "$POST_RPS" \
  "($(thousands "$POSTS") POSTs of $(thousands "$BODY_BYTES") B in $POST_WALL s = $(calc %.0f "$POSTS * $BODY_BYTES / $POST_WALL / 1e6") MB/s; client CPU $(calc %.2f "$POST_CPU") s, receiver $RECEIVER_CPU s)"
row "lower ceiling: $LOWER_NAME" "$LOWER" ""
row "rowhook backfill" "$ROWHOOK_ROWS_PER_S" "($ROWHOOK_MEASURED)"
echo "rowhook / lower ceiling              $(calc %.0f "100 * $ROWHOOK_ROWS_PER_S / $LOWER") %"
echo "rowhook / (c) keyset pages           $(calc %.0f "100 * $ROWHOOK_ROWS_PER_S / $PAGES_RPS") %"
