#!/usr/bin/env bash
# Body benchmark: Open Dental's own element against every column, on the
# same rows, in one run.
#
#   bash bench/bodies.sh [ROWS]        (default 1000000)
#
# Loads ROWS appointments once (as backfill.sh does), then backfills them
# four times with the real binary, alternating `--body columns` and
# `--body opendental` (columns, opendental, columns, opendental), each from
# the same DateTimeStart with rowhook's records cleared, so load and
# machine drift fall on both alike. Open Dental's element reads fewer
# columns but looks names up (definitions, providers, clinics), renders
# enums as names and bools as strings. Prints rows/s, CPU and peak RSS of
# each run, and the ratio of the medians.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROWS=$(bench_rows "${1:-}")
BATCHES=$(((ROWS + BATCH - 1) / BATCH))

bench_build
bench_context
bench_create_db
bench_load "$ROWS"
# The names Open Dental's element looks up, as a practice has them: two
# thousand definitions in 40 categories, 50 providers, 10 clinics.
sql -e "CREATE TABLE definition (DefNum BIGINT PRIMARY KEY, Category TINYINT UNSIGNED NOT NULL,
          ItemName VARCHAR(255) NOT NULL, IsHidden TINYINT NOT NULL DEFAULT 0);
        INSERT INTO definition SELECT seq, seq % 40, CONCAT('Definition ', seq), seq % 7 = 0 FROM seq_1_to_2000;
        CREATE TABLE provider (ProvNum BIGINT PRIMARY KEY, Abbr VARCHAR(255) NOT NULL);
        INSERT INTO provider SELECT seq, CONCAT('DR', seq) FROM seq_1_to_50;
        CREATE TABLE clinic (ClinicNum BIGINT PRIMARY KEY, Abbr VARCHAR(255) NOT NULL);
        INSERT INTO clinic SELECT seq, CONCAT('Clinic ', seq) FROM seq_1_to_10"
bench_start_receiver
bench_subscribe
bench_stop_receiver

declare -A RATES
one_run() {
  local body=$1 n=$2
  sql -e "UPDATE apisubscription SET DateTimeStart = '$SUB_START' WHERE ApiSubscriptionNum = $SUB_ID;
          DELETE FROM rowhook_progress; DELETE FROM rowhook_delivery; DELETE FROM rowhook_health"
  bench_start_receiver > /dev/null 2>&1
  sql -e "UPDATE apisubscription SET EndPointUrl = 'http://127.0.0.1:$RECEIVER_PORT/bench'"
  local status=0
  bench_measure "$WORK/agent-$body-$n.log" "$ROWHOOK" run --once --max-lookback 0 --body "$body" || status=$?
  bench_stop_receiver
  [[ $status == 0 ]] || die "rowhook --body $body exited with $status"
  [[ $RECEIVED_REQUESTS == "$BATCHES" ]] || die "--body $body: $RECEIVED_REQUESTS requests, expected $BATCHES"
  [[ $(bench_watermark_passed) == 1 ]] || die "--body $body: DateTimeStart has not passed every row"
  local rate
  rate=$(div "$ROWS" "$WALL_S")
  RATES[$body]="${RATES[$body]:-} $rate"
  printf '%-10s run %d  %9s rows/s  wall %6.2f s  agent CPU %6.2f s  peak RSS %s MiB  %s bytes/row\n' \
    "$body" "$n" "$(thousands "$rate")" "$WALL_S" "$CPU_S" "$(rss_mib)" "$(div "$RECEIVED_BYTES" "$ROWS")"
}

say "== $(thousands "$ROWS") rows, each body twice, alternating"
for n in 1 2; do
  one_run columns "$n"
  one_run opendental "$n"
done

median2() { awk '{ printf "%.0f", ($1 + $2) / 2 }' <<< "$1"; }
COLUMNS_RATE=$(median2 "${RATES[columns]}")
OD_RATE=$(median2 "${RATES[opendental]}")
cat <<EOF

== bodies: $(thousands "$ROWS") rows, appointment on $(bench_engine)
columns      $(thousands "$COLUMNS_RATE") rows/s (mean of 2)
opendental   $(thousands "$OD_RATE") rows/s (mean of 2)
opendental / columns   $(calc %.2f "$OD_RATE / $COLUMNS_RATE")   (target: at least 0.85)
EOF
