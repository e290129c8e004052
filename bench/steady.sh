#!/usr/bin/env bash
# Steady-state benchmark: how late do changes arrive while the office works?
#
#   bash bench/steady.sh
#   STEADY_SECONDS=20 STEADY_RATE=500 bash bench/steady.sh
#
# A fresh database rowhook_bench_steady with 20,000 appointments, patients
# and patfields, STEADY_SUBS (100) subscriptions spread over the three
# tables with PollingSeconds STEADY_POLLING (1), and bench/writers.py
# changing STEADY_RATE (2000) rows/s across them for STEADY_SECONDS (60) s,
# each change carrying its own commit time. bench_receiver --lag measures
# every delivered row's delay from commit to arrival. After the writers
# stop, rowhook is given until every DateTimeStart has passed the last
# write (at most STEADY_DRAIN_MAX, 120 s), so a backlog shows in the lag.
# Prints lag p50/p99/max and the agent's CPU % while the writers ran.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUBS=${STEADY_SUBS:-100} POLLING=${STEADY_POLLING:-1} RATE=${STEADY_RATE:-2000}
DURATION=${STEADY_SECONDS:-60} DRAIN_MAX=${STEADY_DRAIN_MAX:-120} ROWS=20000
TABLES=(Appointment Patient PatField)

bench_build
bench_python
bench_context
bench_create_db
bench_load "$ROWS"
say "== $ROWS patients and patfields"
sql -e "INSERT INTO patient (LName, FName, Birthdate, Address, City, State, Zip, HmPhone, Email,
          Guarantor, PriProv, EstBalance, DateFirstVisit, ChartNumber, DateTStamp)
        SELECT ELT(1 + seq % 8, 'Smith', 'Johnson', 'Garcia', 'Nguyen', 'O''Brien', 'Martinez-Lopez', 'Williams', 'Brown'),
          ELT(1 + seq % 6, 'Mary', 'James', 'Linda', 'Robert', 'Patricia', 'Michael'),
          '1950-01-01' + INTERVAL seq % 25000 DAY, CONCAT(100 + seq % 9000, ' Main St Apt ', seq % 40),
          'Springfield', 'OR', LPAD(97000 + seq % 999, 5, '0'), CONCAT('(503)555-', LPAD(seq % 10000, 4, '0')),
          CONCAT('pt', seq, '@example.com'), seq, 1 + seq % 5, (seq % 500) / 2,
          '2015-01-01' + INTERVAL seq % 3000 DAY, CONCAT('C', seq), NOW() - INTERVAL 1 DAY
        FROM seq_1_to_$ROWS;
        INSERT INTO patfield (PatNum, FieldName, FieldValue, SecDateEntry, SecDateTEdit)
        SELECT seq, ELT(1 + seq % 3, 'Referral source', 'Preferred pharmacy', 'Allergies'),
          'Walgreens #1234, 5th Ave', '2020-01-01', NOW() - INTERVAL 1 DAY
        FROM seq_1_to_$ROWS"
bench_start_receiver --lag

say "== $SUBS subscriptions, PollingSeconds $POLLING"
NAMES=$(printf "'%s'," "${TABLES[@]}")
sql -e "INSERT INTO apisubscription (EndPointUrl, Workstation, CustomerKey, WatchTable,
          PollingSeconds, UiEventType, DateTimeStart, DateTimeStop, Note)
        SELECT 'http://127.0.0.1:$RECEIVER_PORT/steady', '', 'bench', ELT(1 + seq % ${#TABLES[@]}, ${NAMES%,}),
          $POLLING, '', NOW(), '0001-01-01 00:00:00', ''
        FROM seq_1_to_$SUBS"
# Subscriptions per table, in writers.py's order (appointment, patient, patfield).
read -r SUBS_APT SUBS_PAT SUBS_PF < <(sql -e "SELECT SUM(WatchTable = 'Appointment'),
  SUM(WatchTable = 'Patient'), SUM(WatchTable = 'PatField') FROM apisubscription")

"$ROWHOOK" run > "$WORK/agent.log" 2>&1 &
AGENT_PID=$!
sleep 3 # its first tick: secrets, table columns
kill -0 "$AGENT_PID" 2> /dev/null || die "rowhook exited"

say "== writers: $RATE rows/s for $DURATION s"
CPU0=$(proc_cpu_s "$AGENT_PID") DB0=$(server_cpu_s) RCV0=$(proc_cpu_s "$RECEIVER_PID")
bench_measure "$WORK/writers.out" "$PY" "$BENCH_DIR/writers.py" "$RATE" "$DURATION" "$ROWS" ||
  die "writers.py failed: $(tail -3 "$WORK/writers.out")"
CPU1=$(proc_cpu_s "$AGENT_PID") DB1=$(server_cpu_s) RCV1=$(proc_cpu_s "$RECEIVER_PID")
WRITERS_WALL=$WALL_S WRITERS_CPU=$CPU_S
RSS=$(proc_mib "$AGENT_PID" VmRSS) HWM=$(proc_mib "$AGENT_PID" VmHWM)
WRITTEN=$(grep '^{' "$WORK/writers.out")

# Drain: every subscription's window must pass the last write.
LAST_WRITE=$(sql -e "SELECT CAST(NOW() AS CHAR)")
for ((waited = 0; waited < DRAIN_MAX; waited++)); do
  [[ $(sql -e "SELECT COUNT(*) FROM apisubscription WHERE DateTimeStart <= '$LAST_WRITE'") == 0 ]] && break
  sleep 1
done
kill -0 "$AGENT_PID" 2> /dev/null || die "rowhook exited"
stop_pid "$AGENT_PID"
AGENT_PID=
bench_stop_receiver

APT=$(json_field appointment <<< "$WRITTEN") PAT=$(json_field patient <<< "$WRITTEN") PF=$(json_field patfield <<< "$WRITTEN")
EXPECTED=$((APT * SUBS_APT + PAT * SUBS_PAT + PF * SUBS_PF))
lag() { json_field "lag_$1" <<< "$RECEIVED_JSON"; }
cat <<EOF

== steady: $SUBS subscriptions (PollingSeconds $POLLING), writers $RATE rows/s for $DURATION s
rows changed      $(thousands $((APT + PAT + PF))) (appointment $APT, patient $PAT, patfield $PF) in $(calc %.1f "$WRITERS_WALL") s; writers at most $(json_field late_max_ms <<< "$WRITTEN") ms behind schedule
rows delivered    $(thousands "$(lag rows)") of $(thousands "$EXPECTED") expected (each change x the subscriptions on its table: $SUBS_APT, $SUBS_PAT, $SUBS_PF) in $(thousands "$RECEIVED_REQUESTS") requests, $(calc %.1f "$RECEIVED_BYTES / 1e6") MB
lag p50           $(lag p50_ms) ms   (commit -> receiver, every delivered row)
lag p99           $(lag p99_ms) ms   target: PollingSeconds + 250 ms = $((POLLING * 1000 + 250)) ms
lag max           $(lag max_ms) ms
caught up         $([[ $waited -lt $DRAIN_MAX ]] && echo "$waited s after the writers stopped" || echo "NOT within $DRAIN_MAX s")
agent CPU         $(calc %.1f "100 * ($CPU1 - $CPU0) / $WRITERS_WALL") % of one core while the writers ran ($(calc %.2f "$CPU1 - $CPU0") s)
agent RSS         $RSS MiB at the end of the writes, $HWM MiB peak
others' CPU       mariadbd $(calc %.1f "100 * ($DB1 - $DB0) / $WRITERS_WALL") %, receiver $(calc %.1f "100 * ($RCV1 - $RCV0) / $WRITERS_WALL") %, writers $(calc %.1f "100 * $WRITERS_CPU / $WRITERS_WALL") % (same interval)
EOF
