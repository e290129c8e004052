//! Open Dental's enums as value → name tables (reference §1.4, all read
//! from the 24.3 source).
//!
//! Open Dental sends an enum column as `Enum.ToString()`: the member's name
//! (not its `[Description]`, so 1 is `"NonPatient"`, not "Non-patient"). A
//! stored value with no member comes out as its decimal digits (`"9"`),
//! which is what `value::write_enum` does too.

/// One C# enum: its name (for docs and error messages) and its members.
#[derive(Debug, PartialEq, Eq)]
pub struct EnumTable {
    pub name: &'static str,
    pub members: &'static [(i64, &'static str)],
}

impl EnumTable {
    /// The member named for `value`, or `None` when the enum has none.
    pub fn name_of(&self, value: i64) -> Option<&'static str> {
        self.members
            .iter()
            .find(|(v, _)| *v == value)
            .map(|(_, name)| *name)
    }
}

/// `ApptStatus`: `appointment.AptStatus`. 4 (ASAP) is deprecated but still
/// a member, so still a name.
pub static APPT_STATUS: EnumTable = EnumTable {
    name: "ApptStatus",
    members: &[
        (0, "None"),
        (1, "Scheduled"),
        (2, "Complete"),
        (3, "UnschedList"),
        (4, "ASAP"),
        (5, "Broken"),
        (6, "Planned"),
        (7, "PtNote"),
        (8, "PtNoteCompleted"),
    ],
};

/// `ApptPriority`: `appointment.Priority`.
pub static APPT_PRIORITY: EnumTable = EnumTable {
    name: "ApptPriority",
    members: &[(0, "Normal"), (1, "ASAP")],
};

/// `PatientStatus`: `patient.PatStatus`.
pub static PATIENT_STATUS: EnumTable = EnumTable {
    name: "PatientStatus",
    members: &[
        (0, "Patient"),
        (1, "NonPatient"),
        (2, "Inactive"),
        (3, "Archived"),
        (4, "Deleted"),
        (5, "Deceased"),
        (6, "Prospective"),
    ],
};

/// `PatientGender`: `patient.Gender`.
pub static PATIENT_GENDER: EnumTable = EnumTable {
    name: "PatientGender",
    members: &[(0, "Male"), (1, "Female"), (2, "Unknown"), (3, "Other")],
};

/// `PatientPosition`: `patient.Position` (marital status).
pub static PATIENT_POSITION: EnumTable = EnumTable {
    name: "PatientPosition",
    members: &[
        (0, "Single"),
        (1, "Married"),
        (2, "Child"),
        (3, "Widowed"),
        (4, "Divorced"),
    ],
};

/// `ContactMethod`: `patient.PreferConfirmMethod`, `PreferContactMethod`
/// and `PreferRecallMethod`.
pub static CONTACT_METHOD: EnumTable = EnumTable {
    name: "ContactMethod",
    members: &[
        (0, "None"),
        (1, "DoNotCall"),
        (2, "HmPhone"),
        (3, "WkPhone"),
        (4, "WirelessPh"),
        (5, "Email"),
        (6, "SeeNotes"),
        (7, "Mail"),
        (8, "TextMessage"),
    ],
};

/// `YN`: `patient.TxtMsgOk`.
pub static YN: EnumTable = EnumTable {
    name: "YN",
    members: &[(0, "Unknown"), (1, "Yes"), (2, "No")],
};

/// `ScheduleType`: `schedule.SchedType`.
pub static SCHEDULE_TYPE: EnumTable = EnumTable {
    name: "ScheduleType",
    members: &[
        (0, "Practice"),
        (1, "Provider"),
        (2, "Blockout"),
        (3, "Employee"),
        (4, "WebSchedASAP"),
    ],
};

/// `ProviderStatus`: `provider.ProvStatus`.
pub static PROVIDER_STATUS: EnumTable = EnumTable {
    name: "ProviderStatus",
    members: &[(0, "Active"), (1, "Deleted")],
};

/// `ToothInitialType`: `toothinitial.InitialType`.
pub static TOOTH_INITIAL_TYPE: EnumTable = EnumTable {
    name: "ToothInitialType",
    members: &[
        (0, "Missing"),
        (1, "Hidden"),
        (2, "Primary"),
        (3, "ShiftM"),
        (4, "ShiftO"),
        (5, "ShiftB"),
        (6, "Rotate"),
        (7, "TipM"),
        (8, "TipB"),
        (9, "Drawing"),
        (10, "Text"),
    ],
};

/// Every table above, for tests that walk them all.
pub static ALL: &[&EnumTable] = &[
    &APPT_STATUS,
    &APPT_PRIORITY,
    &PATIENT_STATUS,
    &PATIENT_GENDER,
    &PATIENT_POSITION,
    &CONTACT_METHOD,
    &YN,
    &SCHEDULE_TYPE,
    &PROVIDER_STATUS,
    &TOOTH_INITIAL_TYPE,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every member, spelled as the reference's §1.4 table spells it, and
    /// one value past the last member of each enum, which has no name.
    #[test]
    fn every_enum_names_its_members_and_none_past_them() {
        let expected: &[(&EnumTable, &str)] = &[
            (
                &APPT_STATUS,
                "None Scheduled Complete UnschedList ASAP Broken Planned PtNote PtNoteCompleted",
            ),
            (&APPT_PRIORITY, "Normal ASAP"),
            (
                &PATIENT_STATUS,
                "Patient NonPatient Inactive Archived Deleted Deceased Prospective",
            ),
            (&PATIENT_GENDER, "Male Female Unknown Other"),
            (&PATIENT_POSITION, "Single Married Child Widowed Divorced"),
            (
                &CONTACT_METHOD,
                "None DoNotCall HmPhone WkPhone WirelessPh Email SeeNotes Mail TextMessage",
            ),
            (&YN, "Unknown Yes No"),
            (
                &SCHEDULE_TYPE,
                "Practice Provider Blockout Employee WebSchedASAP",
            ),
            (&PROVIDER_STATUS, "Active Deleted"),
            (
                &TOOTH_INITIAL_TYPE,
                "Missing Hidden Primary ShiftM ShiftO ShiftB Rotate TipM TipB Drawing Text",
            ),
        ];
        assert_eq!(expected.len(), ALL.len(), "a table is missing from ALL");
        for (table, names) in expected {
            assert!(ALL.contains(table), "{} is not in ALL", table.name);
            let names: Vec<&str> = names.split(' ').collect();
            for (value, name) in names.iter().enumerate() {
                let value = i64::try_from(value).unwrap();
                assert_eq!(table.name_of(value), Some(*name), "{} {value}", table.name);
            }
            let past = i64::try_from(names.len()).unwrap();
            assert_eq!(table.name_of(past), None, "{} {past}", table.name);
            assert_eq!(table.name_of(-1), None, "{} -1", table.name);
        }
    }
}
