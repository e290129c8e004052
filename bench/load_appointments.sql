-- One chunk of benchmark appointments: seq @FROM@ to @TO@ (bench/lib.sh
-- substitutes both and runs one chunk per statement).
--
-- Widths follow what a real Open Dental office database holds: ~20,000
-- patients, 8 operatories, 5 providers, notes of 40-120 characters (some
-- with CR LF and quotes, as typed at the front desk), ProcDescript lists of
-- procedure abbreviations, a ProcsColored twin, a 44-character SecurityHash.
-- Completed appointments carry arrived / seated / dismissed times.
--
-- h1..h4 are four independent 32-bit values from MD5(seq): reproducible,
-- and uncorrelated with AptNum. DateTStamp lands anywhere in the hour
-- after bench_anchor.t0, so the order rowhook reads (DateTStamp, AptNum)
-- is not the order the rows were written.

-- Materialise the hashed derived table once per row. Merged (the default),
-- MD5 would be recomputed for every one of the ~40 uses of h1..h4, and
-- loading would take five times longer.
SET SESSION optimizer_switch = 'derived_merge=off';

INSERT INTO appointment (
  PatNum, AptStatus, Pattern, Confirmed, TimeLocked, Op, Note, ProvNum, ProvHyg,
  AptDateTime, NextAptNum, UnschedStatus, IsNewPatient, ProcDescript, Assistant,
  ClinicNum, IsHygiene, DateTStamp, DateTimeArrived, DateTimeSeated,
  DateTimeDismissed, InsPlan1, InsPlan2, DateTimeAskedToArrive, ProcsColored,
  ColorOverride, AppointmentTypeNum, SecUserNumEntry, SecDateTEntry, Priority,
  ProvBarText, PatternSecondary, SecurityHash, ItemOrderPlanned, IsMirrored)
SELECT
  1 + h1 % 20000,
  status,
  CONCAT('//', REPEAT('X', 2 + h3 % 10), '//'),
  19 + h4 % 7,
  0,
  1 + h2 % 8,
  note,
  1 + h3 % 5,
  IF(hyg, 6 + h4 % 2, 0),
  apt,
  0,
  0,
  h1 % 20 = 0,
  procs,
  IF(h2 % 3 = 0, 10 + h3 % 4, 0),
  h4 % 4,
  hyg,
  t0 + INTERVAL (h4 DIV 7) % 3600 SECOND,
  IF(status = 2, apt - INTERVAL 10 MINUTE, '0001-01-01 00:00:00'),
  IF(status = 2, apt + INTERVAL 5 MINUTE, '0001-01-01 00:00:00'),
  IF(status = 2, apt + INTERVAL 55 MINUTE, '0001-01-01 00:00:00'),
  IF(h3 % 5 > 0, 1 + h3 % 3000, 0),
  IF(h3 % 7 = 0, 1 + h4 % 3000, 0),
  '0001-01-01 00:00:00',
  CONCAT('<span color:-16777216>', procs, '</span>'),
  0,
  h2 % 6,
  1 + h4 % 12,
  apt - INTERVAL (h2 % 60) DAY,
  0,
  '',
  '',
  TO_BASE64(UNHEX(SHA2(seq, 256))),
  0,
  0
FROM (
  SELECT seq, h1, h2, h3, h4, t0,
    ELT(1 + h2 % 10, 1, 1, 1, 1, 2, 2, 2, 3, 5, 6) AS status,
    h2 % 4 = 0 AS hyg,
    -- Within 90 days either side of today, 8:00-17:00 on 10-minute slots.
    TIMESTAMP(DATE(t0)) + INTERVAL CAST(h3 % 181 AS SIGNED) - 90 DAY
                        + INTERVAL 480 + (h4 % 54) * 10 MINUTE AS apt,
    CONCAT_WS(IF(h4 % 5 = 0, '\r\n', ' '),
      ELT(1 + h1 % 8, 'Pt called to confirm.', 'Confirmed via text msg, pt replied C.',
          'Left VM to confirm appt.', 'Pt requests AM appts only; works 2nd shift.',
          'Emailed reminder, no reply yet.', 'Pt running 10 min late per phone call.',
          'Spouse "Pat" will bring pt; check ins card.', 'Rescheduled from last wk, pt was sick.'),
      ELT(1 + h2 % 8, 'Ins verified, est copay $45.', 'Pre-med required per cardiologist.',
          'Needs updated med hx and HIPAA form.', 'Sensitive on UR, use topical first.',
          'Wants to discuss whitening options.', 'Balance $120.50 due at checkout.',
          'Nitrous requested.', 'Ortho consult referral pending.'),
      IF(h3 % 3 = 0, ELT(1 + h4 % 4, 'Bring x-rays from previous office (Dr. Smith).',
          'Do not book with hygienist B.', 'Pt is hard of hearing - speak up.',
          'Guarantor is pt''s mother.'), NULL)) AS note,
    CONCAT_WS(', ',
      ELT(1 + h1 % 6, '#3-MOD-Comp2', '#14-DO-Comp2', '#19-Crn-PFM', '#30-BU', '#8-Ven-Porc', 'RCT-Molar #19'),
      ELT(1 + h2 % 6, 'PerEx', 'CompEx', 'PerMaint', 'LimEx', 'Consult', 'Pano'),
      ELT(1 + h3 % 5, '4BW', 'FMX', '2BW', 'PA', 'Pano'),
      ELT(1 + h4 % 4, 'ProAdlt', 'Pro', 'SRP-UR', 'SRP-LL'),
      IF(h1 % 2 = 0, ELT(1 + h2 % 4, 'Flo', 'FloVarnish', 'Seal-#2', 'OHI'), NULL),
      IF(h2 % 3 = 0, ELT(1 + h3 % 4, '#15-Ext-Surg', '#17-Ext-Simple', '#31-MO-Amal', '#12-Crn-Prep'), NULL),
      ELT(1 + h4 % 4, 'D2950-Core buildup incl pins', 'D4910-Perio maintenance', 'D0140-Limited eval', 'D1110-Prophylaxis adult'),
      IF(h4 % 5 = 0, ELT(1 + h1 % 3, '#2-MODL-Comp4', '#18-Onlay-Porc', '#29-Crn-Zirc'), NULL)) AS procs
  FROM (
    SELECT seq,
      CAST(CONV(SUBSTR(m, 1, 8), 16, 10) AS UNSIGNED) AS h1,
      CAST(CONV(SUBSTR(m, 9, 8), 16, 10) AS UNSIGNED) AS h2,
      CAST(CONV(SUBSTR(m, 17, 8), 16, 10) AS UNSIGNED) AS h3,
      CAST(CONV(SUBSTR(m, 25, 8), 16, 10) AS UNSIGNED) AS h4
    FROM (SELECT seq, MD5(seq) AS m FROM seq_@FROM@_to_@TO@) AS hashed
  ) AS s
  CROSS JOIN bench_anchor
) AS r;
