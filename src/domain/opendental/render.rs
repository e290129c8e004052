//! A shape fitted to one real table ([`Plan`]), and one row rendered
//! through it with the lookup names ([`Lookups`]).
//!
//! The per-row work is a loop over prepared steps: no key is looked up by
//! name, no key is escaped again, no `serde_json::Value` is built.

use std::collections::HashMap;

use super::shapes::{DefCat, LookupKind, Rule, Shape};
use super::value::{self, SourceValue};

/// The names Open Dental's caches hold, loaded once and refreshed by the
/// caller. Every row of each table belongs here — hidden definitions
/// included, since `Defs.GetName` searches the category's full list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lookups {
    /// (`definition.Category`, `DefNum`) → `ItemName`.
    pub definitions: HashMap<(DefCat, i64), String>,
    /// `ProvNum` → `provider.Abbr`.
    pub provider_abbr: HashMap<i64, String>,
    /// `ClinicNum` → `clinic.Abbr`.
    pub clinic_abbr: HashMap<i64, String>,
    /// `SiteNum` → `site.Description`.
    pub site_description: HashMap<i64, String>,
}

impl Lookups {
    /// The name for `id`: `""` for 0 or for an id with no row (and, for a
    /// definition, for a `DefNum` of another category), as Open Dental's
    /// `GetName`/`GetAbbr`/`GetDescription` return.
    pub fn name(&self, kind: LookupKind, id: i64) -> &str {
        if id == 0 {
            return "";
        }
        let found = match kind {
            LookupKind::Definition(category) => self.definitions.get(&(category, id)),
            LookupKind::ProviderAbbr => self.provider_abbr.get(&id),
            LookupKind::ClinicAbbr => self.clinic_abbr.get(&id),
            LookupKind::SiteDescription => self.site_description.get(&id),
        };
        found.map_or("", String::as_str)
    }
}

/// A [`Shape`] fitted to the columns one table actually has: keys whose
/// column is missing are dropped (older Open Dental versions sent fewer
/// keys); the table's other columns are never read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    columns: Vec<String>,
    steps: Vec<Step>,
    lookups: Vec<LookupKind>,
}

/// One key: its escaped `"key":` text (with the comma before it unless it
/// is the first), its rule, and which of the plan's columns feeds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    prefix: Box<[u8]>,
    rule: Rule,
    slot: Option<usize>,
}

impl Shape {
    /// Fits this shape to a table whose columns are `table_columns`
    /// (matched case-insensitively, as MariaDB matches column names).
    pub fn plan<S: AsRef<str>>(&self, table_columns: &[S]) -> Plan {
        let has = |name: &str| {
            table_columns
                .iter()
                .map(AsRef::as_ref)
                .find(|c| c.eq_ignore_ascii_case(name))
        };
        let mut plan = Plan {
            columns: Vec::new(),
            steps: Vec::new(),
            lookups: Vec::new(),
        };
        for field in self.effective_fields() {
            let slot = match field.column {
                None => None,
                Some(name) => match has(name) {
                    None => continue,
                    Some(spelled) => Some(plan.slot_of(spelled)),
                },
            };
            if let Rule::Lookup(kind) = field.rule {
                if !plan.lookups.contains(&kind) {
                    plan.lookups.push(kind);
                }
            }
            let mut prefix = Vec::with_capacity(field.key.len() + 4);
            prefix.push(if plan.steps.is_empty() { b'{' } else { b',' });
            value::write_json_string(&mut prefix, field.key);
            prefix.push(b':');
            plan.steps.push(Step {
                prefix: prefix.into_boxed_slice(),
                rule: field.rule,
                slot,
            });
        }
        plan
    }
}

impl Plan {
    fn slot_of(&mut self, column: &str) -> usize {
        match self.columns.iter().position(|c| c == column) {
            Some(i) => i,
            None => {
                self.columns.push(column.to_owned());
                self.columns.len() - 1
            }
        }
    }

    /// The columns to read, spelled as the table spells them, in the order
    /// [`Plan::render`] expects their values.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The lookups the kept keys use.
    pub fn lookups(&self) -> &[LookupKind] {
        &self.lookups
    }

    /// The keys that will be sent, in order (the escaped prefixes, read
    /// back; for tests and `check`).
    pub fn keys(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter_map(|s| {
                let quoted = s.prefix.get(1..s.prefix.len() - 1)?;
                serde_json::from_slice(quoted).ok()
            })
            .collect()
    }

    /// Appends the row's JSON object to `out`. `row` holds the values of
    /// [`Plan::columns`], in that order; a missing one reads as NULL.
    pub fn render(&self, row: &[SourceValue<'_>], lookups: &Lookups, out: &mut Vec<u8>) {
        if self.steps.is_empty() {
            out.extend_from_slice(b"{}");
            return;
        }
        for step in &self.steps {
            out.extend_from_slice(&step.prefix);
            let v = step
                .slot
                .and_then(|i| row.get(i).copied())
                .unwrap_or(SourceValue::Null);
            write_value(out, step.rule, v, lookups);
        }
        out.push(b'}');
    }
}

fn write_value(out: &mut Vec<u8>, rule: Rule, v: SourceValue, lookups: &Lookups) {
    match rule {
        Rule::Int => value::write_int(out, v),
        Rule::Text => value::write_text(out, v),
        Rule::Bool => value::write_bool(out, v),
        Rule::Enum(table) => value::write_enum(out, table, v),
        Rule::Date => value::write_date(out, v),
        Rule::DateTime => value::write_datetime(out, v),
        Rule::Time => value::write_time(out, v),
        Rule::Double => value::write_double_value(out, v),
        Rule::FloatAsString => value::write_float_as_string(out, v),
        Rule::Colour => value::write_colour(out, v),
        Rule::Lookup(kind) => {
            let id = v.integer().unwrap_or(0);
            value::write_json_string(out, lookups.name(kind, id));
        }
        Rule::Null => out.extend_from_slice(b"null"),
        Rule::Fixed(text) => value::write_json_string(out, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::opendental::shapes::{APPOINTMENT, APPOINTMENT_DELETED, PROVIDER, SCHEDULE};
    use SourceValue::{Int, Null, Text};

    fn lookups() -> Lookups {
        let mut l = Lookups::default();
        l.definitions
            .insert((DefCat::APPT_CONFIRMED, 101), "Unconfirmed".into());
        // Hidden in Open Dental: the map does not know, and need not.
        l.definitions
            .insert((DefCat::APPT_CONFIRMED, 102), "Texted - Confirmed".into());
        l.definitions
            .insert((DefCat::BILLING_TYPES, 103), "Standard Account".into());
        l.definitions
            .insert((DefCat::BLOCKOUT_TYPES, 105), "Lunch".into());
        l.provider_abbr.insert(1, "DOC1".into());
        l.clinic_abbr.insert(1, "MAIN".into());
        l.site_description.insert(1, "Lincoln Elementary".into());
        l
    }

    fn render(plan: &Plan, row: &[SourceValue]) -> String {
        let mut out = Vec::new();
        plan.render(row, &lookups(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lookups_give_names_and_empty_for_zero_missing_or_another_category() {
        let l = lookups();
        let confirmed = LookupKind::Definition(DefCat::APPT_CONFIRMED);
        assert_eq!(l.name(confirmed, 101), "Unconfirmed");
        assert_eq!(l.name(confirmed, 102), "Texted - Confirmed", "hidden");
        assert_eq!(l.name(confirmed, 0), "");
        assert_eq!(l.name(confirmed, 999), "");
        assert_eq!(l.name(confirmed, 103), "", "103 is a billing type");
        assert_eq!(l.name(LookupKind::ProviderAbbr, 1), "DOC1");
        assert_eq!(l.name(LookupKind::ProviderAbbr, 99), "", "missing provider");
        assert_eq!(l.name(LookupKind::ClinicAbbr, 1), "MAIN");
        assert_eq!(l.name(LookupKind::SiteDescription, 1), "Lincoln Elementary");
        assert_eq!(l.name(LookupKind::SiteDescription, 2), "");
    }

    /// An old Open Dental schema (22.1-like): no TimeLocked, SecDateTEntry
    /// or PatternSecondary columns. Those keys go; extra columns are ignored.
    #[test]
    fn keys_whose_column_the_table_lacks_are_left_out() {
        let old = [
            "AptNum",
            "PatNum",
            "aptstatus",
            "Confirmed",
            "ProvNum",
            "Extra",
            "SecurityHash",
        ];
        let plan = APPOINTMENT.plan(&old);
        assert_eq!(
            plan.keys(),
            [
                "AptNum",
                "PatNum",
                "AptStatus",
                "Confirmed",
                "confirmed",
                "ProvNum",
                "provAbbr"
            ]
        );
        assert_eq!(
            plan.columns(),
            ["AptNum", "PatNum", "aptstatus", "Confirmed", "ProvNum"],
            "each column once, spelled as the table spells it"
        );
        assert_eq!(
            plan.lookups(),
            [
                LookupKind::Definition(DefCat::APPT_CONFIRMED),
                LookupKind::ProviderAbbr
            ]
        );
        let row = [Int(1), Int(7), Int(9), Int(102), Int(99)];
        assert_eq!(
            render(&plan, &row),
            r#"{"AptNum":1,"PatNum":7,"AptStatus":"9","Confirmed":102,"confirmed":"Texted - Confirmed","ProvNum":99,"provAbbr":""}"#
        );
    }

    #[test]
    fn fixed_keys_are_sent_without_a_column() {
        let plan = PROVIDER.plan(&["ProvNum", "Abbr"]);
        assert_eq!(plan.keys(), ["ProvNum", "Abbr", "serverDateTime"]);
        assert_eq!(
            render(&plan, &[Int(1), Null]),
            r#"{"ProvNum":1,"Abbr":"","serverDateTime":""}"#
        );
    }

    #[test]
    fn a_deleted_appointment_sends_null_for_sec_date_t_entry_only_if_the_table_has_it() {
        let with = APPOINTMENT_DELETED.plan(&["AptNum", "SecDateTEntry"]);
        assert_eq!(
            render(&with, &[Int(5), Text("2024-01-01 00:00:00")]),
            r#"{"AptNum":5,"SecDateTEntry":null}"#
        );
        let without = APPOINTMENT_DELETED.plan(&["AptNum"]);
        assert_eq!(render(&without, &[Int(5)]), r#"{"AptNum":5}"#);
    }

    #[test]
    fn a_table_with_none_of_the_columns_is_an_empty_object_and_short_rows_read_null() {
        assert_eq!(render(&SCHEDULE.plan::<&str>(&[]), &[]), "{}");
        let plan = SCHEDULE.plan(&["ScheduleNum", "Note", "BlockoutType"]);
        assert_eq!(
            plan.keys(),
            ["ScheduleNum", "BlockoutType", "blockoutType", "Note"]
        );
        assert_eq!(
            render(&plan, &[Int(3)]),
            r#"{"ScheduleNum":3,"BlockoutType":0,"blockoutType":"","Note":""}"#
        );
        assert_eq!(
            render(&plan, &[Int(3), Int(105), Text("x")]),
            r#"{"ScheduleNum":3,"BlockoutType":105,"blockoutType":"Lunch","Note":"x"}"#
        );
    }
}

/// Property tests: whatever a backend hands over, every shape renders one
/// JSON object with exactly the plan's keys in the plan's order, and text
/// sent under a `Text` rule reads back as the same text.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::opendental::shapes::{self, Rule};

    /// Owned, so proptest can generate it; borrowed as a [`SourceValue`].
    #[derive(Debug, Clone)]
    enum Owned {
        Null,
        Int(i64),
        Float(f64),
        Text(String),
    }

    impl Owned {
        fn source(&self) -> SourceValue<'_> {
            match self {
                Owned::Null => SourceValue::Null,
                Owned::Int(i) => SourceValue::Int(*i),
                Owned::Float(x) => SourceValue::Float(*x),
                Owned::Text(s) => SourceValue::Text(s),
            }
        }
    }

    fn owned() -> impl Strategy<Value = Owned> {
        prop_oneof![
            Just(Owned::Null),
            any::<i64>().prop_map(Owned::Int),
            (-5i64..300).prop_map(Owned::Int),
            any::<f64>().prop_map(Owned::Float),
            any::<String>().prop_map(Owned::Text),
            "[0-9]{1,4}-[0-9]{2}-[0-9]{2}( [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?)?"
                .prop_map(Owned::Text),
            "-?[0-9]{1,3}:[0-9]{2}:[0-9]{2}".prop_map(Owned::Text),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn any_row_renders_one_object_with_the_plan_keys_in_order(
            shape in proptest::sample::select(shapes::ALL.to_vec()),
            keep in proptest::collection::vec(any::<bool>(), 64),
            cells in proptest::collection::vec(owned(), 64),
        ) {
            // A table with some of the shape's columns, as an older or
            // trimmed schema would have.
            let columns: Vec<&str> = shape
                .source_columns()
                .into_iter()
                .zip(&keep)
                .filter_map(|(c, k)| k.then_some(c))
                .collect();
            let plan = shape.plan(&columns);
            let row: Vec<SourceValue> = cells.iter().take(plan.columns().len()).map(Owned::source).collect();
            let mut out = Vec::new();
            plan.render(&row, &Lookups::default(), &mut out);
            let text = String::from_utf8(out).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
            let object = value.as_object().ok_or_else(|| TestCaseError::fail(text.clone()))?;
            let keys: Vec<String> = object.keys().cloned().collect();
            prop_assert_eq!(&keys, &plan.keys());
            for field in shape.effective_fields() {
                let (Rule::Text, Some(column)) = (field.rule, field.column) else { continue };
                let Some(slot) = plan.columns().iter().position(|c| c == column) else { continue };
                if let Some(Owned::Text(sent)) = cells.get(slot) {
                    prop_assert_eq!(object[field.key].as_str(), Some(sent.as_str()));
                }
            }
        }
    }
}
