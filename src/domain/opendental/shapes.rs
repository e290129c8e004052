//! Open Dental's element for each WatchTable, as data: one line per JSON
//! key, in the order Open Dental serializes them (reference §2, 24.3).
//!
//! Adding a key a later Open Dental version sends is one line in the right
//! table; a table without that column simply leaves the key out (see
//! `Shape::plan`).

use super::enums::{self, EnumTable};

/// How one key's value is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A JSON integer (ids, counts, DefNums sent raw).
    Int,
    /// A JSON string; NULL is `""`.
    Text,
    /// `"true"` / `"false"`.
    Bool,
    /// The member's name; an undefined value as its digits (`"9"`).
    Enum(&'static EnumTable),
    /// `"yyyy-MM-dd"`; zero/invalid as `"0001-01-01"`.
    Date,
    /// `"yyyy-MM-dd HH:mm:ss"`; zero/invalid as `"0001-01-01 00:00:00"`.
    DateTime,
    /// `"hh:mm:ss"` (.NET `TimeSpan`, `d.hh:mm:ss` past a day).
    Time,
    /// A JSON number that always has a point or exponent (`0.0`).
    Double,
    /// A `float` as a string (`"-20"`).
    FloatAsString,
    /// An ARGB `int` as `"R,G,B"`.
    Colour,
    /// A name looked up by the column's id; `""` for 0 or a missing row.
    Lookup(LookupKind),
    /// Always `null`, whatever the column holds (AppointmentDeleted's
    /// `SecDateTEntry`). The column, if named, only decides whether the key
    /// is present.
    Null,
    /// Always this string (Provider's `serverDateTime: ""`).
    Fixed(&'static str),
}

/// An Open Dental definition category (`definition.Category`, C#'s
/// `DefCat`). Only the ones a shape looks up are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DefCat(pub i64);

impl DefCat {
    pub const APPT_CONFIRMED: DefCat = DefCat(2);
    pub const BILLING_TYPES: DefCat = DefCat(4);
    pub const RECALL_UNSCHED_STATUS: DefCat = DefCat(13);
    pub const BLOCKOUT_TYPES: DefCat = DefCat(25);
    pub const OPERATORY_TYPES: DefCat = DefCat(55);
}

/// A small table Open Dental keeps cached and reads names from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LookupKind {
    /// `Defs.GetName(cat, id)`: `definition.ItemName` of the row with that
    /// `DefNum` **in that category**, hidden definitions included.
    Definition(DefCat),
    /// `Providers.GetAbbr`: `provider.Abbr` by `ProvNum`.
    ProviderAbbr,
    /// `Clinics.GetAbbr`: `clinic.Abbr` by `ClinicNum`.
    ClinicAbbr,
    /// `Sites.GetDescription`: `site.Description` by `SiteNum`.
    SiteDescription,
}

/// Where a lookup's names live, for the reader that loads them: every row
/// of `table` (no `IsHidden` filter), `key` → `value`, and for definitions
/// the `category` column that must equal the [`DefCat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupSource {
    pub table: &'static str,
    pub key: &'static str,
    pub value: &'static str,
    pub category: Option<&'static str>,
}

impl LookupKind {
    pub fn source(self) -> LookupSource {
        let (table, key, value, category) = match self {
            LookupKind::Definition(_) => ("definition", "DefNum", "ItemName", Some("Category")),
            LookupKind::ProviderAbbr => ("provider", "ProvNum", "Abbr", None),
            LookupKind::ClinicAbbr => ("clinic", "ClinicNum", "Abbr", None),
            LookupKind::SiteDescription => ("site", "SiteNum", "Description", None),
        };
        LookupSource {
            table,
            key,
            value,
            category,
        }
    }
}

/// One JSON key: its spelling, the source column (`None`: not from a
/// column, always present), and the rule that makes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub key: &'static str,
    pub column: Option<&'static str>,
    pub rule: Rule,
}

/// A key named as its column.
const fn col(name: &'static str, rule: Rule) -> Field {
    Field {
        key: name,
        column: Some(name),
        rule,
    }
}

/// A key spelled differently from the column it is made from.
const fn from(key: &'static str, column: &'static str, rule: Rule) -> Field {
    Field {
        key,
        column: Some(column),
        rule,
    }
}

/// A key with no column: always sent, always the same value.
const fn fixed(key: &'static str, rule: Rule) -> Field {
    Field {
        key,
        column: None,
        rule,
    }
}

/// One WatchTable's element.
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    /// The `EnumWatchTable` name (`apisubscription.WatchTable`).
    pub watch_table: &'static str,
    /// The table Open Dental reads (as in `watch_table.rs`).
    pub table: &'static str,
    /// The keys, in Open Dental's order.
    pub fields: &'static [Field],
    /// Keys of `fields` whose rule differs for this WatchTable (so
    /// AppointmentDeleted can share Appointment's list).
    pub overrides: &'static [(&'static str, Rule)],
    /// `true` when the shape is inferred, not confirmed (ToothInitial).
    pub confirmed: bool,
}

use Rule::{Bool, Colour, Date, DateTime, Double, FloatAsString, Int, Text, Time};

// Lookup rules by name, so every field of a shape stays one line.
const CONFIRMED_NAME: Rule = Rule::Lookup(LookupKind::Definition(DefCat::APPT_CONFIRMED));
const UNSCHED_NAME: Rule = Rule::Lookup(LookupKind::Definition(DefCat::RECALL_UNSCHED_STATUS));
const BILLING_NAME: Rule = Rule::Lookup(LookupKind::Definition(DefCat::BILLING_TYPES));
const BLOCKOUT_NAME: Rule = Rule::Lookup(LookupKind::Definition(DefCat::BLOCKOUT_TYPES));
const OPERATORY_TYPE_NAME: Rule = Rule::Lookup(LookupKind::Definition(DefCat::OPERATORY_TYPES));
const PROV_ABBR: Rule = Rule::Lookup(LookupKind::ProviderAbbr);
const CLINIC_ABBR: Rule = Rule::Lookup(LookupKind::ClinicAbbr);
const SITE_DESC: Rule = Rule::Lookup(LookupKind::SiteDescription);

/// `ODApi.Appointment` (24.3, 33 keys): reference §2.1.
const APPOINTMENT_FIELDS: &[Field] = &[
    col("AptNum", Int),
    col("PatNum", Int),
    col("AptStatus", Rule::Enum(&enums::APPT_STATUS)),
    col("Pattern", Text),
    col("Confirmed", Int),
    from("confirmed", "Confirmed", CONFIRMED_NAME),
    col("TimeLocked", Bool),
    col("Op", Int),
    col("Note", Text),
    col("ProvNum", Int),
    from("provAbbr", "ProvNum", PROV_ABBR),
    col("ProvHyg", Int),
    col("AptDateTime", DateTime),
    col("NextAptNum", Int),
    col("UnschedStatus", Int),
    from("unschedStatus", "UnschedStatus", UNSCHED_NAME),
    col("IsNewPatient", Bool),
    col("ProcDescript", Text),
    col("ClinicNum", Int),
    col("IsHygiene", Bool),
    col("DateTStamp", DateTime),
    col("DateTimeArrived", DateTime),
    col("DateTimeSeated", DateTime),
    col("DateTimeDismissed", DateTime),
    col("InsPlan1", Int),
    col("InsPlan2", Int),
    col("DateTimeAskedToArrive", DateTime),
    from("colorOverride", "ColorOverride", Colour),
    col("AppointmentTypeNum", Int),
    col("SecDateTEntry", DateTime),
    col("Priority", Rule::Enum(&enums::APPT_PRIORITY)),
    col("PatternSecondary", Text),
    col("ItemOrderPlanned", Int),
];

/// Appointment: reference §2.1.
pub static APPOINTMENT: Shape = Shape {
    watch_table: "Appointment",
    table: "appointment",
    fields: APPOINTMENT_FIELDS,
    overrides: &[],
    confirmed: true,
};

/// AppointmentDeleted: Appointment's keys from the `histappointment` row
/// (reference §2.2); `SecDateTEntry` is always `null`, and `DateTStamp` is
/// the hist row's own stamp (same column name, so no override).
pub static APPOINTMENT_DELETED: Shape = Shape {
    watch_table: "AppointmentDeleted",
    table: "histappointment",
    fields: APPOINTMENT_FIELDS,
    overrides: &[("SecDateTEntry", Rule::Null)],
    confirmed: true,
};

/// `ODApi.Patient` (24.3, 45 keys): reference §2.3. `BillingType` carries
/// the definition's name, not the number; `SiteNum` is sent only as
/// `siteDesc`.
pub static PATIENT: Shape = Shape {
    watch_table: "Patient",
    table: "patient",
    fields: &[
        col("PatNum", Int),
        col("LName", Text),
        col("FName", Text),
        col("MiddleI", Text),
        col("Preferred", Text),
        col("PatStatus", Rule::Enum(&enums::PATIENT_STATUS)),
        col("Gender", Rule::Enum(&enums::PATIENT_GENDER)),
        col("Position", Rule::Enum(&enums::PATIENT_POSITION)),
        col("Birthdate", Date),
        col("SSN", Text),
        col("Address", Text),
        col("Address2", Text),
        col("City", Text),
        col("State", Text),
        col("Zip", Text),
        col("HmPhone", Text),
        col("WkPhone", Text),
        col("WirelessPhone", Text),
        col("Guarantor", Int),
        col("Email", Text),
        col("EstBalance", Double),
        col("PriProv", Int),
        from("priProvAbbr", "PriProv", PROV_ABBR),
        col("SecProv", Int),
        from("secProvAbbr", "SecProv", PROV_ABBR),
        col("BillingType", BILLING_NAME),
        col("ImageFolder", Text),
        col("FamFinUrgNote", Text),
        col("ChartNumber", Text),
        col("MedicaidID", Text),
        col("BalTotal", Double),
        col("DateFirstVisit", Date),
        col("ClinicNum", Int),
        from("clinicAbbr", "ClinicNum", CLINIC_ABBR),
        col("Ward", Text),
        col("PreferConfirmMethod", Rule::Enum(&enums::CONTACT_METHOD)),
        col("PreferContactMethod", Rule::Enum(&enums::CONTACT_METHOD)),
        col("PreferRecallMethod", Rule::Enum(&enums::CONTACT_METHOD)),
        col("Language", Text),
        col("AdmitDate", Date),
        from("siteDesc", "SiteNum", SITE_DESC),
        col("DateTStamp", DateTime),
        col("SuperFamily", Int),
        col("TxtMsgOk", Rule::Enum(&enums::YN)),
        col("SecDateEntry", Date),
    ],
    overrides: &[],
    confirmed: true,
};

/// `ODApi.PatField` (6 keys): reference §2.4, in the binary's order
/// (SecDateEntry before SecDateTEdit; the docs show the reverse, §3).
pub static PAT_FIELD: Shape = Shape {
    watch_table: "PatField",
    table: "patfield",
    fields: &[
        col("PatFieldNum", Int),
        col("PatNum", Int),
        col("FieldName", Text),
        col("FieldValue", Text),
        col("SecDateEntry", Date),
        col("SecDateTEdit", DateTime),
    ],
    overrides: &[],
    confirmed: true,
};

/// `ODApi.Operatory` (13 keys): reference §2.5. Its `DateTStamp` selects
/// the rows but is not sent.
pub static OPERATORY: Shape = Shape {
    watch_table: "Operatory",
    table: "operatory",
    fields: &[
        col("OperatoryNum", Int),
        col("OpName", Text),
        col("Abbrev", Text),
        col("ItemOrder", Int),
        col("IsHidden", Bool),
        col("ProvDentist", Int),
        col("ProvHygienist", Int),
        col("IsHygiene", Bool),
        col("ClinicNum", Int),
        col("SetProspective", Bool),
        col("IsWebSched", Bool),
        col("OperatoryType", Int),
        from("operatoryType", "OperatoryType", OPERATORY_TYPE_NAME),
    ],
    overrides: &[],
    confirmed: true,
};

/// `ODApi.Provider` (23 keys): reference §2.6. `serverDateTime` is the
/// constant `""` in events. (24.4.17+ docs also show `SigOnFile` after
/// `UsingTIN`; 24.3's binary does not send it.)
pub static PROVIDER: Shape = Shape {
    watch_table: "Provider",
    table: "provider",
    fields: &[
        col("ProvNum", Int),
        col("Abbr", Text),
        col("LName", Text),
        col("FName", Text),
        col("MI", Text),
        col("Suffix", Text),
        col("FeeSched", Int),
        col("Specialty", Int),
        col("SSN", Text),
        col("StateLicense", Text),
        col("IsSecondary", Bool),
        from("provColor", "ProvColor", Colour),
        col("IsHidden", Bool),
        col("UsingTIN", Bool),
        col("NationalProvID", Text),
        col("DateTStamp", DateTime),
        col("IsNotPerson", Bool),
        col("ProvStatus", Rule::Enum(&enums::PROVIDER_STATUS)),
        col("IsHiddenReport", Bool),
        col("Birthdate", Date),
        col("SchedNote", Text),
        col("PreferredName", Text),
        fixed("serverDateTime", Rule::Fixed("")),
    ],
    overrides: &[],
    confirmed: true,
};

/// `ODApi.ScheduleEvent` (10 keys): reference §2.7 — not the Schedules
/// GET shape (numbers stay numbers; no `operatories`, no `DateTStamp`).
pub static SCHEDULE: Shape = Shape {
    watch_table: "Schedule",
    table: "schedule",
    fields: &[
        col("ScheduleNum", Int),
        col("SchedDate", Date),
        col("StartTime", Time),
        col("StopTime", Time),
        col("SchedType", Rule::Enum(&enums::SCHEDULE_TYPE)),
        col("ProvNum", Int),
        col("BlockoutType", Int),
        from("blockoutType", "BlockoutType", BLOCKOUT_NAME),
        col("Note", Text),
        col("EmployeeNum", Int),
    ],
    overrides: &[],
    confirmed: true,
};

/// `ODApi.ToothInitial` (10 keys): reference §2.8. **Not confirmed**: the
/// event arrived in 24.4.30, after the last source seen; this is the DTO
/// 24.2–24.3 use for `GET /toothinitials`, with the binary's `colorDraw`
/// (the docs write `ColorDraw`).
pub static TOOTH_INITIAL: Shape = Shape {
    watch_table: "ToothInitial",
    table: "toothinitial",
    fields: &[
        col("ToothInitialNum", Int),
        col("PatNum", Int),
        col("ToothNum", Text),
        col("InitialType", Rule::Enum(&enums::TOOTH_INITIAL_TYPE)),
        col("Movement", FloatAsString),
        col("DrawingSegment", Text),
        from("colorDraw", "ColorDraw", Colour),
        col("SecDateTEntry", DateTime),
        col("SecDateTEdit", DateTime),
        col("DrawText", Text),
    ],
    overrides: &[],
    confirmed: false,
};

/// Every shape, one per Open Dental WatchTable.
pub static ALL: &[&Shape] = &[
    &APPOINTMENT,
    &APPOINTMENT_DELETED,
    &PATIENT,
    &PAT_FIELD,
    &OPERATORY,
    &PROVIDER,
    &SCHEDULE,
    &TOOTH_INITIAL,
];

/// The shape for a `WatchTable` name, matched case-insensitively as
/// `WatchTarget::parse` matches it; `None` for any other table, which gets
/// the raw-column body.
pub fn shape_for(watch_table: &str) -> Option<&'static Shape> {
    let name = watch_table.trim();
    ALL.iter()
        .copied()
        .find(|s| s.watch_table.eq_ignore_ascii_case(name))
}

impl Shape {
    /// The keys in order, with this WatchTable's overrides applied.
    pub fn effective_fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.fields.iter().map(|f| {
            let rule = self
                .overrides
                .iter()
                .find(|(key, _)| *key == f.key)
                .map_or(f.rule, |(_, rule)| *rule);
            Field { rule, ..*f }
        })
    }

    /// The source columns the shape reads, each once, in first-use order.
    /// A reader selects the ones its table has (see [`Shape::plan`]).
    pub fn source_columns(&self) -> Vec<&'static str> {
        let mut columns: Vec<&'static str> = Vec::new();
        for column in self.fields.iter().filter_map(|f| f.column) {
            if !columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
                columns.push(column);
            }
        }
        columns
    }

    /// The lookups the shape uses, each once.
    pub fn lookups(&self) -> Vec<LookupKind> {
        let mut kinds: Vec<LookupKind> = Vec::new();
        for f in self.effective_fields() {
            if let Rule::Lookup(kind) = f.rule {
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
        }
        kinds
    }
}

#[cfg(test)]
mod tests;
