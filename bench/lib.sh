# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are read by the scripts that source it
# Shared setup for the benchmark scripts; sourced, never run.
#
# Each script gets its own fresh MariaDB database, rowhook_bench_<script>
# (rowhook_bench_backfill, ...), with Open Dental's tables
# (fixtures/mysql/schema.sql) and rowhook's (`rowhook migrate`), and drops it
# on exit, stopping whatever it started.
#
# Settings (defaults match the test suite's MariaDB):
#   BENCH_MYSQL_HOST=127.0.0.1 BENCH_MYSQL_PORT=3306 BENCH_MYSQL_USER=root
#   MYSQL_PWD=...   (read by the mariadb client; add it to the URL yourself)
#   BENCH_ENGINE=InnoDB  convert appointment after loading (the fixture,
#                   like a classic Open Dental database, is MyISAM)
#   CARGO_TARGET_DIR  where cargo builds (default ./target)
#   BENCH_BUILD=0   do not run cargo; use the binaries already built
#   KEEP_DB=1       leave the database behind for a look afterwards

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
BENCH_NAME=$(basename "$0" .sh)
BENCH_DB=rowhook_bench_$BENCH_NAME
: "${BENCH_MYSQL_HOST:=127.0.0.1}" "${BENCH_MYSQL_PORT:=3306}" "${BENCH_MYSQL_USER:=root}"
export BENCH_MYSQL_HOST BENCH_MYSQL_PORT BENCH_MYSQL_USER BENCH_DB
export DATABASE_URL="mysql://${BENCH_MYSQL_USER}@${BENCH_MYSQL_HOST}:${BENCH_MYSQL_PORT}/${BENCH_DB}"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ROWHOOK="$TARGET/release/rowhook"
RECEIVER="$TARGET/release/examples/bench_receiver"
READER="$TARGET/release/examples/bench_read"
# Where backfill.sh leaves its figures for limit.sh and peer.sh (gitignored).
RESULTS="$BENCH_DIR/results"
# Open Dental's batch size, and rowhook's default --batch-size.
BATCH=1000

# Scratch files (receiver output, logs, measurements); removed on exit.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rowhook-bench.XXXXXX")
RECEIVER_PID='' AGENT_PID=''

say() { printf '%s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

# The mariadb client on the server, without a database (admin) or in the
# bench database (sql); tab-separated, no headers, for scripting.
admin() { mariadb -h "$BENCH_MYSQL_HOST" -P "$BENCH_MYSQL_PORT" -u "$BENCH_MYSQL_USER" --batch --skip-column-names "$@"; }
sql() { admin "$BENCH_DB" "$@"; }
# The same, as a bordered table with headers, for people to read.
sql_table() { mariadb -h "$BENCH_MYSQL_HOST" -P "$BENCH_MYSQL_PORT" -u "$BENCH_MYSQL_USER" --table "$BENCH_DB" "$@"; }

# ROWS from the first argument: digits only, at least one batch.
bench_rows() {
  local rows=${1:-1000000}
  [[ $rows =~ ^[0-9]+$ && $rows -ge 1 ]] || die "ROWS must be a positive whole number, not '$rows'"
  echo "$rows"
}

# Release builds. Two cargo calls on purpose: an example is compiled with the
# dev-dependencies' features (tokio's test-util), and building the binary in
# the same call would give it those features too; the binary measured must
# be the one `cargo build --release` ships.
bench_build() {
  if [[ ${BENCH_BUILD:-1} != 0 ]]; then
    say "== build (release, $TARGET)"
    (cd "$ROOT" && cargo build --release --quiet &&
      cargo build --release --quiet --example bench_receiver --example bench_read)
  fi
  [[ -x $ROWHOOK && -x $RECEIVER && -x $READER ]] || die "release builds missing in $TARGET"
}

# A virtualenv with pymysql and requests for the Python clients (peer.py,
# post_loop.py, writers.py); created once, in bench/.venv (gitignored), or
# BENCH_VENV. Sets PY.
bench_python() {
  local venv=${BENCH_VENV:-$BENCH_DIR/.venv}
  PY=$venv/bin/python
  if ! [[ -x $PY ]] || ! "$PY" -c 'import pymysql, requests' 2> /dev/null; then
    say "== python venv $venv (pymysql, requests)"
    python3 -m venv "$venv" || die "python3 -m venv failed"
    "$venv/bin/pip" install --quiet --disable-pip-version-check pymysql requests || die "pip install failed"
  fi
}

# What the figures depend on, printed before them: the machine, how busy it
# already is (another job on the same two cores skews every number), the
# server and the code measured (with BENCH_BUILD=0 the binary may be older
# than the checkout).
bench_context() {
  local rev
  rev=$(git -C "$ROOT" describe --always --dirty 2> /dev/null || echo "not a git checkout")
  say "== $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(admin -e 'SELECT CONCAT("MariaDB ", VERSION())')"
  say "   checkout $rev; rowhook binary built $(date -u -r "$ROWHOOK" '+%Y-%m-%d %H:%M UTC')"
}

# Fresh database: Open Dental's tables, then `rowhook migrate` as an operator
# would run it (it creates apisubscription).
bench_create_db() {
  say "== database $BENCH_DB on $BENCH_MYSQL_HOST:$BENCH_MYSQL_PORT"
  admin -e "DROP DATABASE IF EXISTS $BENCH_DB; CREATE DATABASE $BENCH_DB"
  sql < "$ROOT/fixtures/mysql/schema.sql"
  "$ROWHOOK" migrate > "$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; die "rowhook migrate"; }
}

# ROWS appointments with Open Dental-like widths, DateTStamp spread over the
# last hour in an order unrelated to AptNum (real edits touch old and new
# appointments alike). Generated inside the server from MariaDB's SEQUENCE
# engine (seq_1_to_N), 250,000 rows per statement, so loading costs seconds,
# not a client round trip per row. Every value comes from MD5(seq), so two
# runs with the same ROWS load the same data (only the hour moves).
bench_load() {
  local rows=$1 chunk=250000 from to started
  started=$(date +%s.%N)
  say "== load $rows appointment rows"
  # One anchor for every chunk: the hour ends one second before loading
  # starts, so by the time anything reads, every row is in the past.
  sql -e "DROP TABLE IF EXISTS bench_anchor; CREATE TABLE bench_anchor (t0 datetime NOT NULL) ENGINE=MEMORY;
          INSERT INTO bench_anchor VALUES (NOW() - INTERVAL 3601 SECOND)"
  for ((from = 1; from <= rows; from += chunk)); do
    to=$((from + chunk - 1 < rows ? from + chunk - 1 : rows))
    sed -e "s/@FROM@/$from/; s/@TO@/$to/" "$BENCH_DIR/load_appointments.sql" | sql
  done
  sql -e "DROP TABLE bench_anchor"
  if [[ -n ${BENCH_ENGINE:-} ]]; then
    [[ $BENCH_ENGINE =~ ^[A-Za-z]+$ ]] || die "BENCH_ENGINE must be an engine name"
    say "   converting appointment to $BENCH_ENGINE"
    sql -e "ALTER TABLE appointment ENGINE=$BENCH_ENGINE"
  fi
  # Key statistics, as any long-lived database has them; without them the
  # optimizer guesses.
  sql -e "ANALYZE TABLE appointment" > /dev/null
  local got
  got=$(sql -e "SELECT COUNT(*) FROM appointment")
  [[ $got == "$rows" ]] || die "loaded $got rows, wanted $rows"
  sql -e "SELECT CONCAT('   ', COUNT(*), ' rows, DateTStamp ', MIN(DateTStamp), ' .. ', MAX(DateTStamp),
                        ', Note ', MIN(CHAR_LENGTH(Note)), '-', MAX(CHAR_LENGTH(Note)),
                        ' chars, ProcDescript ', MIN(CHAR_LENGTH(ProcDescript)), '-', MAX(CHAR_LENGTH(ProcDescript)),
                        ' chars, ', COUNT(DISTINCT PatNum), ' patients') FROM appointment" >&2
  say "   loaded in $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
}

# Starts bench_receiver on a free port, with any extra arguments (--lag);
# sets RECEIVER_PORT. The idle limit is only a safety net: the scripts stop
# it with SIGTERM.
# shellcheck disable=SC2120 # the scripts call it with and without arguments
bench_start_receiver() {
  : > "$WORK/receiver.out" # exists before the receiver writes it, for awk
  "$RECEIVER" 0 900 "$@" > "$WORK/receiver.out" 2> "$WORK/receiver.err" &
  RECEIVER_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    RECEIVER_PORT=$(awk '$1 == "LISTENING" { print $2; exit }' "$WORK/receiver.out")
    [[ -n $RECEIVER_PORT ]] && break
    kill -0 "$RECEIVER_PID" 2> /dev/null || die "bench_receiver exited: $(cat "$WORK/receiver.err")"
    sleep 0.05
  done
  [[ -n $RECEIVER_PORT ]] || die "bench_receiver did not say where it listens"
  say "== receiver on 127.0.0.1:$RECEIVER_PORT (pid $RECEIVER_PID)"
}

# Stops the receiver and reads its counts into RECEIVED_REQUESTS and
# RECEIVED_BYTES; its whole JSON line is in RECEIVED_JSON.
bench_stop_receiver() {
  [[ -n $RECEIVER_PID ]] || return 0
  kill -TERM "$RECEIVER_PID" 2> /dev/null || true
  wait "$RECEIVER_PID" || true
  RECEIVER_PID=
  RECEIVED_JSON=$(grep '^{' "$WORK/receiver.out" || true)
  [[ -n $RECEIVED_JSON ]] || die "bench_receiver printed no counts"
  RECEIVED_REQUESTS=$(json_field requests <<< "$RECEIVED_JSON")
  RECEIVED_BYTES=$(json_field bytes <<< "$RECEIVED_JSON")
}

# A number from a one-line JSON object on stdin: json_field requests.
json_field() { sed -nE "s/.*\"$1\": ?(-?[0-9.]+).*/\\1/p"; }

# One Appointment subscription for every workstation (Workstation ''),
# due at once (PollingSeconds 0), starting two hours ago, never expiring.
# Sets SUB_ID and SUB_START (DateTimeStart as the server prints it).
bench_subscribe() {
  sql -e "INSERT INTO apisubscription (EndPointUrl, Workstation, CustomerKey, WatchTable,
            PollingSeconds, UiEventType, DateTimeStart, DateTimeStop, Note)
          VALUES ('http://127.0.0.1:$RECEIVER_PORT/bench', '', 'bench', 'Appointment',
            0, '', NOW() - INTERVAL 2 HOUR, '0001-01-01 00:00:00', '')"
  SUB_ID=$(sql -e "SELECT MAX(ApiSubscriptionNum) FROM apisubscription")
  SUB_START=$(bench_watermark)
}

bench_watermark() {
  sql -e "SELECT CAST(DateTimeStart AS CHAR) FROM apisubscription WHERE ApiSubscriptionNum = $SUB_ID"
}

# 1 when the subscription's DateTimeStart has passed every appointment row.
bench_watermark_passed() {
  sql -e "SELECT (SELECT DateTimeStart FROM apisubscription WHERE ApiSubscriptionNum = $SUB_ID)
                 > (SELECT MAX(DateTStamp) FROM appointment)"
}

# The appointment table's engine, as the server reports it.
bench_engine() {
  sql -e "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'appointment'"
}

# Runs a command under measure.py, its output going to the log file $1; sets
# WALL_S, CPU_S, RSS_KIB and RSS_FLOOR (the child's) and returns the
# command's exit status. BENCH_STDIN=FILE feeds the command that file.
bench_measure() {
  local log=$1 status=0
  shift
  python3 "$BENCH_DIR/measure.py" --out "$WORK/measure.env" --log "$log" \
    ${BENCH_STDIN:+--stdin "$BENCH_STDIN"} -- "$@" || status=$?
  # shellcheck disable=SC1091
  source "$WORK/measure.env"
  return "$status"
}

# rowhook's backfill rate for ROWS rows on this engine, as backfill.sh last
# measured it (bench/results/), running backfill.sh first when there is no
# such figure. ROWHOOK_ROWS_PER_S overrides. Sets ROWHOOK_ROWS_PER_S and
# ROWHOOK_MEASURED (when and how).
bench_rowhook_rate() {
  local rows=$1 file="$RESULTS/backfill-$1-${BENCH_ENGINE:-MyISAM}.env"
  if [[ -n ${ROWHOOK_ROWS_PER_S:-} ]]; then
    ROWHOOK_MEASURED="given in ROWHOOK_ROWS_PER_S"
    return
  fi
  if ! [[ -s $file ]]; then
    say "== no backfill figure for $rows rows yet: running bench/backfill.sh $rows"
    BENCH_BUILD=0 bash "$BENCH_DIR/backfill.sh" "$rows" >&2 || die "backfill.sh failed"
  fi
  # shellcheck disable=SC1090
  source "$file"
  ROWHOOK_ROWS_PER_S=$BACKFILL_ROWS_PER_S
  ROWHOOK_MEASURED="bench/backfill.sh $rows at $BACKFILL_DATE"
}

# CPU seconds (user + system) a process has used so far, from /proc.
proc_cpu_s() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat" 2> /dev/null || true
}

# A line of /proc/PID/status in MiB: proc_mib PID VmRSS (or VmHWM, the peak).
proc_mib() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# CPU seconds the local MariaDB server has used so far (empty when it is not
# a process of this machine we can read). Sampled before and after a run, it
# shows how much of the wall time the database spent working. It counts
# every client's queries, so keep the server otherwise idle.
server_cpu_s() {
  local pid
  pid=$(pidof mariadbd 2> /dev/null || pidof mysqld 2> /dev/null) || return 0
  proc_cpu_s "${pid%% *}"
}

# Peak RSS in MiB, marked "<=" when the child was smaller than measure.py.
rss_mib() { printf '%s%s' "$([[ ${RSS_FLOOR:-0} == 1 ]] && echo '<= ')" "$(div "$RSS_KIB" 1024 1)"; }

# printf FORMAT of an awk expression over numbers: calc %.2f "$A / $B".
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# a / b with `digits` decimals (0 when b is 0).
div() { awk -v a="$1" -v b="$2" -v d="${3:-0}" 'BEGIN { printf "%.*f", d, (b > 0 ? a / b : 0) }'; }
# 1234567 -> 1,234,567 (whole numbers only).
thousands() { sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta' <<< "$1"; }

# Stops a background process we started (and waits for it), by pid.
stop_pid() {
  [[ -n ${1:-} ]] || return 0
  kill -TERM "$1" 2> /dev/null || true
  wait "$1" 2> /dev/null || true
}

# Trap: stop what we started, run the script's own BENCH_ON_EXIT, drop the
# database, keep the agent's log, remove scratch files.
bench_cleanup() {
  local status=$?
  stop_pid "$AGENT_PID"
  stop_pid "$RECEIVER_PID"
  [[ -n ${BENCH_ON_EXIT:-} ]] && { $BENCH_ON_EXIT || true; }
  if [[ ${KEEP_DB:-0} == 1 ]]; then
    say "KEEP_DB=1: database $BENCH_DB left in place"
  else
    admin -e "DROP DATABASE IF EXISTS $BENCH_DB" 2> /dev/null || true
  fi
  # The agent's log, for a look afterwards: bench/results/<script>-agent.log.
  [[ -s $WORK/agent.log ]] && mkdir -p "$RESULTS" && cp "$WORK/agent.log" "$RESULTS/$BENCH_NAME-agent.log"
  if [[ $status != 0 && -s $WORK/agent.log ]]; then
    say "--- last lines of the agent's log:"
    tail -n 20 "$WORK/agent.log" >&2
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
