//! The shapes against reference §2 and against `watch_table.rs`.

use super::*;

fn keys(shape: &Shape) -> Vec<&'static str> {
    shape.fields.iter().map(|f| f.key).collect()
}

/// The key counts and orders of reference §2, and §4.1's summary.
#[test]
fn every_shape_has_the_reference_key_count_and_order() {
    for (shape, count) in [
        (&APPOINTMENT, 33),
        (&APPOINTMENT_DELETED, 33),
        (&PATIENT, 45),
        (&PAT_FIELD, 6),
        (&OPERATORY, 13),
        (&PROVIDER, 23),
        (&SCHEDULE, 10),
        (&TOOTH_INITIAL, 10),
    ] {
        assert_eq!(shape.fields.len(), count, "{}", shape.watch_table);
        let mut seen = keys(shape);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), count, "{}: a key twice", shape.watch_table);
    }
    assert_eq!(keys(&PATIENT)[25], "BillingType");
    assert_eq!(keys(&PATIENT)[40], "siteDesc");
    assert_eq!(keys(&APPOINTMENT)[27], "colorOverride");
    assert_eq!(keys(&PAT_FIELD)[4..], ["SecDateEntry", "SecDateTEdit"]);
    assert_eq!(keys(&PROVIDER).last(), Some(&"serverDateTime"));
}

#[test]
fn watch_table_names_find_their_shapes_case_insensitively() {
    for shape in ALL {
        assert_eq!(shape_for(shape.watch_table), Some(*shape));
        assert_eq!(
            shape_for(&shape.watch_table.to_ascii_uppercase()),
            Some(*shape)
        );
    }
    assert_eq!(shape_for(" patfield "), Some(&PAT_FIELD));
    assert_eq!(shape_for("payment"), None);
    assert_eq!(shape_for("procedurelog"), None);
    assert_eq!(shape_for("histappointment"), None, "a table, not a name");
}

#[test]
fn watch_tables_match_watch_table_rs() {
    for shape in ALL {
        let target = crate::domain::watch_table::WatchTarget::parse(shape.watch_table).unwrap();
        assert_eq!(target.name, shape.watch_table);
        assert_eq!(target.table.as_str(), shape.table);
    }
}

#[test]
fn appointment_deleted_differs_only_in_a_null_sec_date_t_entry() {
    let live: Vec<Field> = APPOINTMENT.effective_fields().collect();
    let deleted: Vec<Field> = APPOINTMENT_DELETED.effective_fields().collect();
    assert_eq!(live.len(), deleted.len());
    for (a, d) in live.iter().zip(&deleted) {
        if a.key == "SecDateTEntry" {
            assert_eq!(d.rule, Rule::Null);
            assert_eq!(d.column, Some("SecDateTEntry"), "present iff the column is");
        } else {
            assert_eq!(a, d);
        }
    }
}

#[test]
fn shapes_name_the_columns_and_lookups_they_need() {
    let columns = PATIENT.source_columns();
    assert_eq!(
        columns.len(),
        42,
        "45 keys, 3 derived from a column already read"
    );
    assert_eq!(columns.iter().filter(|c| **c == "PriProv").count(), 1);
    assert!(columns.contains(&"SiteNum"));
    assert_eq!(
        PATIENT.lookups(),
        [
            LookupKind::ProviderAbbr,
            LookupKind::Definition(DefCat::BILLING_TYPES),
            LookupKind::ClinicAbbr,
            LookupKind::SiteDescription,
        ]
    );
    assert_eq!(
        APPOINTMENT.lookups(),
        [
            LookupKind::Definition(DefCat::APPT_CONFIRMED),
            LookupKind::ProviderAbbr,
            LookupKind::Definition(DefCat::RECALL_UNSCHED_STATUS),
        ]
    );
    assert_eq!(
        PROVIDER.source_columns().len(),
        22,
        "serverDateTime has none"
    );
    assert!(PAT_FIELD.lookups().is_empty());
    assert_eq!(
        LookupKind::Definition(DefCat::BLOCKOUT_TYPES)
            .source()
            .category,
        Some("Category")
    );
    assert_eq!(LookupKind::SiteDescription.source().value, "Description");
}

#[test]
fn only_tooth_initial_is_unconfirmed() {
    for shape in ALL {
        assert_eq!(shape.confirmed, shape.watch_table != "ToothInitial");
    }
}
