//! The golden fixtures in `fixtures/opendental/` agree with the renderer:
//! each WatchTable's rows, read from the same SQL file the integration tests
//! load into MariaDB, render to exactly the elements in its JSON file.
//!
//! The SQL is read by a small parser for the one form those files use
//! (`INSERT INTO t (cols) VALUES (…), (…);` with numbers, `NULL` and
//! MariaDB string literals), so the data exists once. Values go to the
//! renderer as MariaDB's text protocol would hand them over: strings,
//! dates and times as text, numbers as numbers.

use std::path::PathBuf;

use super::shapes::{self, DefCat, Shape};
use super::{Lookups, SourceValue};

/// What `{stamp}` stands for in these tests.
const STAMP: &str = "2024-05-06 07:08:09";

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

impl Literal {
    fn source(&self) -> SourceValue<'_> {
        match self {
            Literal::Null => SourceValue::Null,
            Literal::Int(i) => SourceValue::Int(*i),
            Literal::Float(x) => SourceValue::Float(*x),
            Literal::Text(s) => SourceValue::Text(s),
        }
    }
}

#[derive(Debug)]
struct Insert {
    table: String,
    columns: Vec<String>,
    rows: Vec<Vec<Literal>>,
}

impl Insert {
    fn value(&self, row: &[Literal], column: &str) -> Literal {
        let i = self
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(column))
            .unwrap_or_else(|| panic!("{}: no column {column}", self.table));
        row[i].clone()
    }
}

fn fixture(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "fixtures", "opendental", name]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.replace("{stamp}", STAMP)
}

/// Tokens of the fixture SQL: words (bare or back-quoted), literals and
/// punctuation.
#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Lit(Literal),
    Punct(char),
}

fn tokens(sql: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                chars.by_ref().find(|&c| c == '\n');
            }
            c if c.is_whitespace() => {}
            '(' | ')' | ',' | ';' => out.push(Token::Punct(c)),
            '`' => out.push(Token::Word(
                chars.by_ref().take_while(|&c| c != '`').collect(),
            )),
            '\'' => out.push(Token::Lit(Literal::Text(string_literal(&mut chars)))),
            c if c.is_ascii_digit() || c == '-' => {
                let mut number = c.to_string();
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit() || **d == '.') {
                    number.push(d);
                    chars.next();
                }
                out.push(Token::Lit(match number.parse::<i64>() {
                    Ok(i) => Literal::Int(i),
                    Err(_) => Literal::Float(number.parse().expect("a number")),
                }));
            }
            c => {
                let mut word = c.to_string();
                while let Some(&d) = chars.peek().filter(|d| d.is_alphanumeric() || **d == '_') {
                    word.push(d);
                    chars.next();
                }
                out.push(if word.eq_ignore_ascii_case("NULL") {
                    Token::Lit(Literal::Null)
                } else {
                    Token::Word(word)
                });
            }
        }
    }
    out
}

/// The rest of a `'…'` literal, with MariaDB's escapes (`''`, `\\`, `\'`,
/// `\n`, `\t`, `\r`, `\0`).
fn string_literal(chars: &mut std::iter::Peekable<std::str::Chars>) -> String {
    let mut text = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\'' if chars.peek() == Some(&'\'') => {
                chars.next();
                text.push('\'');
            }
            '\'' => return text,
            '\\' => text.push(match chars.next().expect("an escape") {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '0' => '\0',
                other => other,
            }),
            c => text.push(c),
        }
    }
    panic!("unterminated string literal");
}

fn inserts(sql: &str) -> Vec<Insert> {
    let mut found = Vec::new();
    let mut toks = tokens(sql).into_iter().peekable();
    while let Some(tok) = toks.next() {
        assert!(
            matches!(&tok, Token::Word(w) if w.eq_ignore_ascii_case("INSERT")),
            "{tok:?}"
        );
        assert!(matches!(toks.next(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("INTO")));
        let Some(Token::Word(table)) = toks.next() else {
            panic!("a table name")
        };
        let columns = group(&mut toks)
            .into_iter()
            .map(|t| match t {
                Token::Word(w) => w,
                other => panic!("a column name, not {other:?}"),
            })
            .collect::<Vec<_>>();
        assert!(matches!(toks.next(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("VALUES")));
        let mut rows = Vec::new();
        loop {
            let row: Vec<Literal> = group(&mut toks)
                .into_iter()
                .map(|t| match t {
                    Token::Lit(l) => l,
                    other => panic!("a literal, not {other:?}"),
                })
                .collect();
            assert_eq!(
                row.len(),
                columns.len(),
                "{table}: a row of the wrong width"
            );
            rows.push(row);
            match toks.next() {
                Some(Token::Punct(',')) => continue,
                Some(Token::Punct(';')) => break,
                other => panic!("{table}: ',' or ';', not {other:?}"),
            }
        }
        found.push(Insert {
            table,
            columns,
            rows,
        });
    }
    found
}

/// `( a, b, … )`: the items between the parentheses.
fn group(toks: &mut impl Iterator<Item = Token>) -> Vec<Token> {
    assert_eq!(toks.next(), Some(Token::Punct('(')));
    let mut items = Vec::new();
    loop {
        items.push(toks.next().expect("an item"));
        match toks.next() {
            Some(Token::Punct(',')) => {}
            Some(Token::Punct(')')) => return items,
            other => panic!("',' or ')', not {other:?}"),
        }
    }
}

fn int(l: Literal) -> i64 {
    match l {
        Literal::Int(i) => i,
        other => panic!("an integer, not {other:?}"),
    }
}

fn text(l: Literal) -> String {
    match l {
        Literal::Text(s) => s,
        other => panic!("text, not {other:?}"),
    }
}

/// The lookup names, read from `lookups.sql` and `provider.sql` as the
/// reader would load them: every row, hidden ones included.
fn lookups() -> Lookups {
    let mut l = Lookups::default();
    let sql = fixture("lookups.sql") + &fixture("provider.sql");
    for ins in inserts(&sql) {
        for row in &ins.rows {
            let v = |c: &str| ins.value(row, c);
            match ins.table.as_str() {
                "definition" => {
                    let key = (DefCat(int(v("Category"))), int(v("DefNum")));
                    l.definitions.insert(key, text(v("ItemName")));
                }
                "provider" => {
                    l.provider_abbr.insert(int(v("ProvNum")), text(v("Abbr")));
                }
                "clinic" => {
                    l.clinic_abbr.insert(int(v("ClinicNum")), text(v("Abbr")));
                }
                "site" => {
                    l.site_description
                        .insert(int(v("SiteNum")), text(v("Description")));
                }
                other => panic!("unexpected lookup table {other}"),
            }
        }
    }
    l
}

/// The JSON array of the shape's rows in its fixture, rendered.
fn rendered(shape: &Shape, lookups: &Lookups) -> Vec<u8> {
    let file = shape.watch_table.to_ascii_lowercase();
    let sql = fixture(&format!("{file}.sql"));
    let ins = inserts(&sql);
    let [ins] = ins.as_slice() else {
        panic!("{file}.sql: one INSERT expected")
    };
    assert_eq!(
        ins.table, shape.table,
        "{file}.sql inserts into the wrong table"
    );
    let plan = shape.plan(&ins.columns);
    let mut out = vec![b'['];
    // AppointmentDeleted's rows are histappointment's deletions only
    // (watch_table's RowFilter::DeletedAppointments).
    let deleted_only = shape.watch_table == "AppointmentDeleted";
    let rows = ins
        .rows
        .iter()
        .filter(|row| !deleted_only || ins.value(row, "HistApptAction") == Literal::Int(4));
    for (n, row) in rows.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let values: Vec<Literal> = plan.columns().iter().map(|c| ins.value(row, c)).collect();
        let values: Vec<SourceValue> = values.iter().map(Literal::source).collect();
        plan.render(&values, lookups, &mut out);
    }
    out.push(b']');
    out
}

/// The keys of every object in `v`, in order, at every depth.
fn key_orders(v: &serde_json::Value) -> Vec<Vec<String>> {
    match v {
        serde_json::Value::Array(items) => items.iter().flat_map(key_orders).collect(),
        serde_json::Value::Object(map) => vec![map.keys().cloned().collect()],
        _ => Vec::new(),
    }
}

#[test]
fn every_fixture_renders_to_its_golden_elements_key_for_key_and_byte_for_byte() {
    let lookups = lookups();
    for shape in shapes::ALL {
        let file = shape.watch_table.to_ascii_lowercase();
        let ours = rendered(shape, &lookups);
        let got: serde_json::Value = serde_json::from_slice(&ours).unwrap_or_else(|e| {
            panic!("{file}: not JSON ({e}): {}", String::from_utf8_lossy(&ours))
        });
        let want: serde_json::Value =
            serde_json::from_str(&fixture(&format!("{file}.json"))).unwrap();
        assert!(
            want.as_array().is_some_and(|a| !a.is_empty()),
            "{file}.json: no elements"
        );
        assert_eq!(
            key_orders(&got),
            key_orders(&want),
            "{file}: keys or their order"
        );
        assert_eq!(got, want, "{file}: values");
        // The fixtures hold no text whose escaping differs between
        // Newtonsoft and serde_json, and no double serde_json would spell
        // differently, so the compact golden text is Open Dental's bytes.
        let want_bytes = serde_json::to_vec(&want).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&want_bytes),
            "{file}: bytes"
        );
    }
}

#[test]
fn the_fixtures_cover_the_cases_the_issue_names() {
    let all: String = shapes::ALL
        .iter()
        .map(|s| fixture(&format!("{}.json", s.watch_table.to_ascii_lowercase())))
        .collect();
    for needle in [
        r#""AptStatus": "9""#,                     // an undefined enum value
        r#""confirmed": "Texted - Confirmed""#,    // a hidden definition
        r#""provAbbr": """#,                       // a missing provider
        r#""Note": """#,                           // NULL text
        r#""colorOverride": "255,255,251""#,       // a colour
        r#""AptDateTime": "0001-01-01 00:00:00""#, // a zero date
        r#""Birthdate": "1850-01-01""#,            // no pre-1880 clamp
        r#""SecDateTEntry": null"#,                // a deleted appointment
        r#""EstBalance": 12.5"#,
        r#""BalTotal": 0.0"#,
        r#""StopTime": "1.01:00:00""#,
        r#""Movement": "-20""#,
        r#""serverDateTime": """#,
    ] {
        assert!(all.contains(needle), "no fixture shows {needle}");
    }
}

#[test]
fn the_sql_parser_reads_mariadb_literals() {
    let ins = inserts("-- c\nINSERT INTO `t` (`a`, b) VALUES (1, 'x''y\\\\z\\n'), (-2.5, NULL);");
    assert_eq!(ins.len(), 1);
    assert_eq!(ins[0].columns, ["a", "b"]);
    assert_eq!(
        ins[0].rows,
        [
            vec![Literal::Int(1), Literal::Text("x'y\\z\n".into())],
            vec![Literal::Float(-2.5), Literal::Null],
        ]
    );
}

/// `stamped_tables.txt` is the 24.3 schema's list of change-stamp columns:
/// 66 tables, `auto` exactly where the column is a `timestamp … ON UPDATE
/// CURRENT_TIMESTAMP`, and taskhist's `DateTStamp` the one plain copy.
#[test]
fn the_stamped_table_list_matches_the_24_3_schema() {
    let schema = fixture("schema-24.3.sql");
    let mut from_schema = Vec::new();
    let mut table = "";
    for line in schema.lines() {
        if let Some(rest) = line.strip_prefix("CREATE TABLE `") {
            table = rest.split('`').next().unwrap_or("");
        }
        for column in ["DateTStamp", "SecDateTEdit"] {
            if line.trim_start().starts_with(&format!("`{column}` ")) {
                let kind = if line.contains("ON UPDATE CURRENT_TIMESTAMP") {
                    "auto"
                } else {
                    "copy"
                };
                from_schema.push(format!("{table}\t{column}\t{kind}"));
            }
        }
    }
    from_schema.sort();
    let listed: Vec<String> = fixture("stamped_tables.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, from_schema);
    let mut tables: Vec<&str> = listed.iter().filter_map(|l| l.split('\t').next()).collect();
    tables.dedup();
    assert_eq!(tables.len(), 66);
    let copies: Vec<&String> = listed.iter().filter(|l| l.ends_with("\tcopy")).collect();
    assert_eq!(copies, ["taskhist\tDateTStamp\tcopy"]);
    assert!(listed.contains(&"taskhist\tSecDateTEdit\tauto".to_owned()));
}

/// The SQLite demo's cut-down tables (`fixtures/sqlite/schema.sql`) get
/// Open Dental's shapes with the keys they have columns for, in Open
/// Dental's order.
#[test]
fn the_sqlite_demo_tables_send_the_keys_they_have_in_open_dental_order() {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "fixtures",
        "sqlite",
        "schema.sql",
    ]
    .iter()
    .collect();
    let schema = std::fs::read_to_string(&path).expect("fixtures/sqlite/schema.sql");
    let columns_of = |table: &str| -> Vec<String> {
        let start = format!("CREATE TABLE {table} (");
        schema
            .lines()
            .skip_while(|l| !l.starts_with(&start))
            .skip(1)
            .take_while(|l| !l.starts_with(')'))
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect()
    };
    let keys = |shape: &Shape, table: &str| shape.plan(&columns_of(table)).keys();
    assert_eq!(
        keys(&shapes::APPOINTMENT, "appointment"),
        [
            "AptNum",
            "PatNum",
            "AptStatus",
            "Pattern",
            "Confirmed",
            "confirmed",
            "Op",
            "Note",
            "ProvNum",
            "provAbbr",
            "AptDateTime",
            "IsNewPatient",
            "ProcDescript",
            "ClinicNum",
            "DateTStamp",
            "DateTimeArrived",
            "SecDateTEntry",
            "Priority",
        ]
    );
    assert_eq!(
        keys(&shapes::APPOINTMENT_DELETED, "histappointment"),
        [
            "AptNum",
            "PatNum",
            "AptStatus",
            "Note",
            "AptDateTime",
            "DateTStamp"
        ],
        "no Hist* keys; no SecDateTEntry column, so no null key either"
    );
    assert_eq!(
        keys(&shapes::PATIENT, "patient"),
        [
            "PatNum",
            "LName",
            "FName",
            "PatStatus",
            "Birthdate",
            "HmPhone",
            "Email",
            "EstBalance",
            "DateTStamp"
        ]
    );
}
