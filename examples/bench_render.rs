//! The CPU cost of rendering alone: the same appointment rows as the
//! raw-column body (`db::encode::JsonRow`, as `db/mysql/page.rs` drives it)
//! and as Open Dental's body (`opendental::Plan::render`), no database, no
//! network.
//!
//! ```text
//! cargo run --release --example bench_render [ROWS]     (default 1000000)
//! ```
//!
//! Rows are 1000 distinct appointments (the 24.3 columns, values as the
//! text protocol hands them over: integers as numbers, text and datetimes
//! as text) rendered round-robin into batches of 1000. Prints one line of
//! JSON per body: `{"body":…,"rows":N,"seconds":S,"rows_per_s":R,"bytes":B}`.

use std::hint::black_box;
use std::time::Instant;

use rowhook::db::encode::JsonRow;
use rowhook::db::ColumnKind;
use rowhook::domain::opendental::{shape_for, DefCat, Lookups, SourceValue};
use serde_json::Value;

/// A column value as the benchmark stores it.
#[derive(Clone)]
enum Cell {
    Int(i64),
    Text(String),
    Null,
}

/// `appointment`'s 35 columns in the 24.3 schema, with the kind page.rs
/// would give each.
const COLUMNS: &[(&str, ColumnKind)] = &[
    ("AptNum", ColumnKind::Int),
    ("PatNum", ColumnKind::Int),
    ("AptStatus", ColumnKind::UInt),
    ("Pattern", ColumnKind::Text),
    ("Confirmed", ColumnKind::Int),
    ("TimeLocked", ColumnKind::Int),
    ("Op", ColumnKind::Int),
    ("Note", ColumnKind::Text),
    ("ProvNum", ColumnKind::Int),
    ("ProvHyg", ColumnKind::Int),
    ("AptDateTime", ColumnKind::DateTime),
    ("NextAptNum", ColumnKind::Int),
    ("UnschedStatus", ColumnKind::Int),
    ("IsNewPatient", ColumnKind::UInt),
    ("ProcDescript", ColumnKind::Text),
    ("Assistant", ColumnKind::Int),
    ("ClinicNum", ColumnKind::Int),
    ("IsHygiene", ColumnKind::UInt),
    ("DateTStamp", ColumnKind::DateTime),
    ("DateTimeArrived", ColumnKind::DateTime),
    ("DateTimeSeated", ColumnKind::DateTime),
    ("DateTimeDismissed", ColumnKind::DateTime),
    ("InsPlan1", ColumnKind::Int),
    ("InsPlan2", ColumnKind::Int),
    ("DateTimeAskedToArrive", ColumnKind::DateTime),
    ("ProcsColored", ColumnKind::Text),
    ("ColorOverride", ColumnKind::Int),
    ("AppointmentTypeNum", ColumnKind::Int),
    ("SecUserNumEntry", ColumnKind::Int),
    ("SecDateTEntry", ColumnKind::DateTime),
    ("Priority", ColumnKind::Int),
    ("ProvBarText", ColumnKind::Text),
    ("PatternSecondary", ColumnKind::Text),
    ("SecurityHash", ColumnKind::Text),
    ("ItemOrderPlanned", ColumnKind::Int),
];

fn row(i: i64) -> Vec<Cell> {
    let when = format!(
        "2024-06-{:02} {:02}:{:02}:00",
        1 + i % 28,
        8 + i % 9,
        i % 60
    );
    COLUMNS
        .iter()
        .map(|(name, kind)| match (*name, kind) {
            ("AptNum", _) => Cell::Int(i + 1),
            ("AptStatus", _) => Cell::Int(1 + i % 6),
            ("Confirmed", _) => Cell::Int(100 + i % 5),
            ("ProvNum", _) => Cell::Int(1 + i % 12),
            ("Note", _) if i % 3 == 0 => Cell::Null,
            ("Note", _) => Cell::Text(format!("Patient note {i}, \"quoted\"")),
            ("ColorOverride", _) => Cell::Int(-(i % 7)),
            ("Pattern", _) => Cell::Text("//XXXX//".into()),
            ("ProcDescript", _) => Cell::Text("PFM Crn, PA".into()),
            (_, ColumnKind::DateTime) => Cell::Text(when.clone()),
            (_, ColumnKind::Text) => Cell::Text(String::new()),
            _ => Cell::Int(i % 4),
        })
        .collect()
}

fn lookups() -> Lookups {
    let mut l = Lookups::default();
    for n in 100..105 {
        l.definitions
            .insert((DefCat::APPT_CONFIRMED, n), format!("Confirmed {n}"));
    }
    for n in 1..13 {
        l.provider_abbr.insert(n, format!("DOC{n}"));
    }
    l
}

fn raw(rows: &[Vec<Cell>], out: &mut Vec<u8>, i: usize) {
    let mut object = JsonRow::new();
    for ((name, kind), cell) in COLUMNS.iter().zip(&rows[i % rows.len()]) {
        match cell {
            Cell::Int(v) => object.field(name, &Value::from(*v)),
            Cell::Text(t) => object.text_field(name, *kind, t),
            Cell::Null => object.field(name, &Value::Null),
        }
    }
    out.extend_from_slice(&object.finish());
}

fn report(body: &str, rows: usize, seconds: f64, bytes: usize) {
    println!(
        "{{\"body\":\"{body}\",\"rows\":{rows},\"seconds\":{seconds:.3},\"rows_per_s\":{:.0},\"bytes\":{bytes}}}",
        rows as f64 / seconds
    );
}

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let rows: Vec<Vec<Cell>> = (0..1000).map(row).collect();
    let Some(shape) = shape_for("Appointment") else {
        eprintln!("no Appointment shape");
        std::process::exit(1);
    };
    let names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
    let plan = shape.plan(&names);
    let slots: Vec<usize> = plan
        .columns()
        .iter()
        .filter_map(|c| names.iter().position(|n| n == c))
        .collect();
    let lookups = lookups();

    let mut batch = Vec::with_capacity(1 << 20);
    let mut bytes = 0;
    let start = Instant::now();
    for i in 0..total {
        raw(&rows, &mut batch, i);
        if i % 1000 == 999 {
            bytes += black_box(&batch).len();
            batch.clear();
        }
    }
    report("columns", total, start.elapsed().as_secs_f64(), bytes);

    let mut values: Vec<SourceValue> = Vec::with_capacity(slots.len());
    bytes = 0;
    let start = Instant::now();
    for i in 0..total {
        let cells = &rows[i % rows.len()];
        values.clear();
        values.extend(slots.iter().map(|&s| match &cells[s] {
            Cell::Int(v) => SourceValue::Int(*v),
            Cell::Text(t) => SourceValue::Text(t),
            Cell::Null => SourceValue::Null,
        }));
        plan.render(&values, &lookups, &mut batch);
        if i % 1000 == 999 {
            bytes += black_box(&batch).len();
            batch.clear();
        }
    }
    report("opendental", total, start.elapsed().as_secs_f64(), bytes);
}
