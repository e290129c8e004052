#!/usr/bin/env bash
# Idle benchmark: what does rowhook cost when nothing changes?
#
#   bash bench/idle.sh
#   IDLE_SECONDS=20 bash bench/idle.sh
#
# A fresh database rowhook_bench_idle with 20 watched tables (Open Dental's
# appointment, histappointment, patient, patfield, payment and 15 more with
# a DateTStamp column; 1,000 day-old rows in most) and IDLE_SUBS (1000)
# subscriptions spread over them, PollingSeconds IDLE_POLLING (5), start
# times staggered over that period; no row changes. The real rowhook runs
# as its own database user (rowhook_bench_idle), so MariaDB's per-user
# statistics count exactly its statements. After IDLE_WARMUP (10) s it is
# measured for IDLE_SECONDS (60) s: CPU %, RSS, and statements per second.
#
# Per-user statistics need `SET GLOBAL userstat = 1`; the previous value is
# put back on exit.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUBS=${IDLE_SUBS:-1000} POLLING=${IDLE_POLLING:-5}
WARMUP=${IDLE_WARMUP:-10} SECONDS_MEASURED=${IDLE_SECONDS:-60}
AGENT_USER=$BENCH_DB
TABLES=(Appointment AppointmentDeleted Patient PatField payment)
for ((i = 1; ${#TABLES[@]} < 20; i++)); do TABLES+=("$(printf 'idle_%02d' "$i")"); done

USERSTAT_BEFORE=$(admin -e "SELECT @@global.userstat")
restore() {
  admin -e "SET GLOBAL userstat = $USERSTAT_BEFORE; DROP USER IF EXISTS '$AGENT_USER'@'%'" 2> /dev/null
}
BENCH_ON_EXIT=restore

bench_build
bench_context
bench_create_db
bench_start_receiver

say "== ${#TABLES[@]} tables, $SUBS subscriptions, PollingSeconds $POLLING"
for table in "${TABLES[@]:5}"; do
  sql -e "CREATE TABLE $table (Num bigint NOT NULL AUTO_INCREMENT, PatNum bigint NOT NULL DEFAULT 0,
            Note text NULL, DateTStamp timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
            PRIMARY KEY (Num), KEY DateTStamp (DateTStamp)) ENGINE=MyISAM;
          INSERT INTO $table (PatNum, Note, DateTStamp)
            SELECT seq, CONCAT('row ', seq), NOW() - INTERVAL 1 DAY FROM seq_1_to_1000"
done
sql -e "INSERT INTO appointment (PatNum, Note, DateTStamp) SELECT seq, 'old', NOW() - INTERVAL 1 DAY FROM seq_1_to_1000;
        INSERT INTO patient (LName, DateTStamp) SELECT CONCAT('P', seq), NOW() - INTERVAL 1 DAY FROM seq_1_to_1000"
NAMES=$(printf "'%s'," "${TABLES[@]}")
sql -e "INSERT INTO apisubscription (EndPointUrl, Workstation, CustomerKey, WatchTable,
          PollingSeconds, UiEventType, DateTimeStart, DateTimeStop, Note)
        SELECT 'http://127.0.0.1:$RECEIVER_PORT/idle', '', 'bench', ELT(1 + seq % ${#TABLES[@]}, ${NAMES%,}),
          $POLLING, '', NOW() - INTERVAL seq % $POLLING SECOND, '0001-01-01 00:00:00', ''
        FROM seq_1_to_$SUBS"

# rowhook's own user: everything in this database, and PROCESS for the
# open-transaction check (README, "Least privilege").
admin -e "DROP USER IF EXISTS '$AGENT_USER'@'%'; CREATE USER '$AGENT_USER'@'%';
          GRANT ALL ON $BENCH_DB.* TO '$AGENT_USER'@'%'; GRANT PROCESS ON *.* TO '$AGENT_USER'@'%';
          SET GLOBAL userstat = 1"
# SELECT_COMMANDS UPDATE_COMMANDS OTHER_COMMANDS CPU_TIME (s), of rowhook's user.
agent_stats() {
  admin -e "SELECT SELECT_COMMANDS, UPDATE_COMMANDS, OTHER_COMMANDS, CPU_TIME
            FROM information_schema.USER_STATISTICS WHERE USER = '$AGENT_USER'"
}

say "== rowhook run, $WARMUP s warm-up, then $SECONDS_MEASURED s measured"
DATABASE_URL="mysql://$AGENT_USER@$BENCH_MYSQL_HOST:$BENCH_MYSQL_PORT/$BENCH_DB" \
  "$ROWHOOK" run > "$WORK/agent.log" 2>&1 &
AGENT_PID=$!
sleep "$WARMUP"
kill -0 "$AGENT_PID" 2> /dev/null || die "rowhook exited"
read -r SEL0 UPD0 OTH0 DBCPU0 < <(agent_stats)
CPU0=$(proc_cpu_s "$AGENT_PID") T0=$(date +%s.%N)
sleep "$SECONDS_MEASURED"
read -r SEL1 UPD1 OTH1 DBCPU1 < <(agent_stats)
CPU1=$(proc_cpu_s "$AGENT_PID") T1=$(date +%s.%N)
RSS=$(proc_mib "$AGENT_PID" VmRSS) HWM=$(proc_mib "$AGENT_PID" VmHWM)
kill -0 "$AGENT_PID" 2> /dev/null || die "rowhook exited"
stop_pid "$AGENT_PID"
AGENT_PID=
bench_stop_receiver
[[ $RECEIVED_REQUESTS == 0 ]] || die "the receiver got $RECEIVED_REQUESTS requests; nothing should change"

WALL=$(calc %.3f "$T1 - $T0")
per_s() { calc %.1f "($1) / $WALL"; }
DUE=$(calc %.1f "$SUBS / $POLLING")
cat <<EOF

== idle: $SUBS subscriptions on ${#TABLES[@]} tables, PollingSeconds $POLLING, nothing changing, $(calc %.0f "$WALL") s
agent CPU         $(calc %.2f "$CPU1 - $CPU0") s = $(calc %.2f "100 * ($CPU1 - $CPU0) / $WALL") % of one core
agent RSS         $RSS MiB now, $HWM MiB peak
statements/s      $(per_s "$SEL1 + $UPD1 + $OTH1 - $SEL0 - $UPD0 - $OTH0") (SELECT $(per_s "$SEL1 - $SEL0"), UPDATE $(per_s "$UPD1 - $UPD0"), other $(per_s "$OTH1 - $OTH0"); MariaDB USER_STATISTICS)
due/s (nominal)   $DUE ($SUBS / $POLLING s); target: statements/s <= $(calc %.1f "$DUE + 1")
statements/due    $(calc %.2f "($SEL1 + $UPD1 + $OTH1 - $SEL0 - $UPD0 - $OTH0) / $WALL / $DUE")
database CPU      $(calc %.2f "$DBCPU1 - $DBCPU0") s for rowhook's statements ($(calc %.2f "100 * ($DBCPU1 - $DBCPU0) / $WALL") % of one core)
log lines         $(wc -l < "$WORK/agent.log") ($(grep -c -E 'WARN|ERROR' "$WORK/agent.log" || true) WARN/ERROR)
EOF
