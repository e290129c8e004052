# Shared setup for the benchmark scripts; sourced, never run.
#
# Each script gets the same world: a fresh MariaDB database `rowhook_bench`
# with Open Dental's tables, ROWS appointment rows changed during the last
# hour, one Appointment subscription whose DateTimeStart is two hours ago,
# and bench_receiver (examples/bench_receiver.rs) as the endpoint. Whatever
# is measured then reads and sends exactly that one hour of rows.
#
# Connection settings (defaults match the test suite's MariaDB):
#   BENCH_MYSQL_HOST=127.0.0.1 BENCH_MYSQL_PORT=3306 BENCH_MYSQL_USER=root
#   MYSQL_PWD=...   (read by the mariadb client; add it to the URL yourself)
#   BENCH_ENGINE=InnoDB  convert appointment after loading (the fixture,
#                   like a classic Open Dental database, is MyISAM)
#   KEEP_DB=1       leave the database behind for a look afterwards

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
BENCH_DB=rowhook_bench
: "${BENCH_MYSQL_HOST:=127.0.0.1}" "${BENCH_MYSQL_PORT:=3306}" "${BENCH_MYSQL_USER:=root}"
export DATABASE_URL="mysql://${BENCH_MYSQL_USER}@${BENCH_MYSQL_HOST}:${BENCH_MYSQL_PORT}/${BENCH_DB}"
ROWHOOK="$ROOT/target/release/rowhook"
RECEIVER="$ROOT/target/release/examples/bench_receiver"
# Open Dental's batch size, and rowhook's default --batch-size.
BATCH=1000

# Scratch files (receiver output, logs, measurements); removed on exit.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rowhook-bench.XXXXXX")
RECEIVER_PID=

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
  local rows=${1:-200000}
  [[ $rows =~ ^[0-9]+$ && $rows -ge 1 ]] || die "ROWS must be a positive whole number, not '$rows'"
  echo "$rows"
}

# Release builds. Two cargo calls on purpose: an example is compiled with the
# dev-dependencies' features (tokio's test-util), and building the binary in
# the same call would give it those features too; the binary measured must
# be the one `cargo build --release` ships.
bench_build() {
  say "== build (release)"
  (cd "$ROOT" && cargo build --release --quiet && cargo build --release --quiet --example bench_receiver)
  [[ -x $ROWHOOK && -x $RECEIVER ]] || die "release builds missing"
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

# Starts bench_receiver on a free port; sets RECEIVER_PORT. The idle limit
# is only a safety net: the scripts stop it with SIGTERM.
bench_start_receiver() {
  "$RECEIVER" 0 900 > "$WORK/receiver.out" 2> "$WORK/receiver.err" &
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
# RECEIVED_BYTES.
bench_stop_receiver() {
  [[ -n $RECEIVER_PID ]] || return 0
  kill -TERM "$RECEIVER_PID" 2> /dev/null || true
  wait "$RECEIVER_PID" || true
  RECEIVER_PID=
  local json
  json=$(grep '^{' "$WORK/receiver.out" || true)
  [[ -n $json ]] || die "bench_receiver printed no counts"
  RECEIVED_REQUESTS=$(sed -E 's/.*"requests":([0-9]+).*/\1/' <<< "$json")
  RECEIVED_BYTES=$(sed -E 's/.*"bytes":([0-9]+).*/\1/' <<< "$json")
}

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

# The appointment table's engine, as the server reports it.
bench_engine() {
  sql -e "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'appointment'"
}

# Runs a command under measure.py, its output going to the log file $1; sets
# WALL_S, CPU_S, RSS_KIB and RSS_FLOOR (the child's) and returns the
# command's exit status.
bench_measure() {
  local log=$1 status=0
  shift
  python3 "$BENCH_DIR/measure.py" --out "$WORK/measure.env" --log "$log" -- "$@" || status=$?
  # shellcheck disable=SC1091
  source "$WORK/measure.env"
  return "$status"
}

# CPU seconds the local MariaDB server has used so far (empty when it is not
# a process of this machine we can read). Sampled before and after a run, it
# shows how much of the wall time the database spent working. It counts
# every client's queries, so keep the server otherwise idle.
server_cpu_s() {
  local pid
  pid=$(pidof mariadbd 2> /dev/null || pidof mysqld 2> /dev/null) || return 0
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/${pid%% *}/stat" 2> /dev/null || true
}

# Peak RSS in MiB, marked "<=" when the child was smaller than measure.py.
rss_mib() { printf '%s%s' "$([[ ${RSS_FLOOR:-0} == 1 ]] && echo '<= ')" "$(div "$RSS_KIB" 1024 1)"; }

# printf FORMAT of an awk expression over numbers: calc %.2f "$A / $B".
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# a / b with `digits` decimals (0 when b is 0).
div() { awk -v a="$1" -v b="$2" -v d="${3:-0}" 'BEGIN { printf "%.*f", d, (b > 0 ? a / b : 0) }'; }
# 1234567 -> 1,234,567 (whole numbers only).
thousands() { sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta' <<< "$1"; }

# Trap: stop what we started, drop the database, remove scratch files.
bench_cleanup() {
  local status=$?
  if [[ -n $RECEIVER_PID ]]; then
    kill -TERM "$RECEIVER_PID" 2> /dev/null || true
    wait "$RECEIVER_PID" 2> /dev/null || true
  fi
  if [[ ${KEEP_DB:-0} == 1 ]]; then
    say "KEEP_DB=1: database $BENCH_DB left in place"
  else
    admin -e "DROP DATABASE IF EXISTS $BENCH_DB" 2> /dev/null || true
  fi
  if [[ $status != 0 && -s $WORK/agent.log ]]; then
    say "--- last lines of the agent's log:"
    tail -n 20 "$WORK/agent.log" >&2
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
