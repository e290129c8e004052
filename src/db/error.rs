//! The database layer's one error type. Variants a caller acts on (a missing
//! table, a missing migration, a refused grant) are apart from the plain
//! driver error.

/// Errors of the database layer. Variants the caller acts on are separate
/// from the plain driver error.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL {0:?}: use mysql://, mariadb:// or sqlite://")]
    UnsupportedUrl(String),
    #[error("table {0:?} does not exist in this database")]
    TableNotFound(String),
    #[error("table {table} has no column {column} of type timestamp or datetime")]
    MissingChangeColumn { table: String, column: String },
    #[error("table {0} has no change column (DateTStamp or SecDateTEdit, timestamp or datetime)")]
    NoChangeColumn(String),
    #[error("table {0} has no single-column integer primary key, which ordered paging needs")]
    NoIntegerKey(String),
    #[error("the server's time {0:?} is not a date and time")]
    BadServerTime(String),
    #[error("time zone {0:?} is unknown to the server (load its time zone tables: mariadb-tzinfo-to-sql /usr/share/zoneinfo | mariadb mysql)")]
    UnknownZone(String),
    #[error("rowhook's tables are not up to date (pending: {0}); run `rowhook migrate`")]
    NotMigrated(String),
    #[error("the signing secret stored for subscription {0} is unusable: {1}; set one with `rowhook secret set` or `rotate`")]
    BadSecret(i64, crate::domain::secret::SecretError),
    #[error("this agent no longer holds subscription {0}'s lease; another agent delivers it")]
    LeaseLost(i64),
    #[error("{0}")]
    Sql(#[from] sqlx::Error),
}

impl DbError {
    /// Whether the server refused a statement for want of a privilege
    /// (MySQL's 1142 table, 1143 column, 1044 database, 1045 login, 1227
    /// global privilege).
    pub fn is_missing_grant(&self) -> bool {
        let Self::Sql(sqlx::Error::Database(e)) = self else {
            return false;
        };
        let mysql = e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>();
        mysql.is_some_and(|e| [1142, 1143, 1044, 1045, 1227].contains(&e.number()))
    }

    /// Whether the connection to the server was lost (closed, reset,
    /// killed: MariaDB's 1927; the server shutting down: 1053), or none
    /// could be had in time, rather than a statement refused.
    pub fn is_connection_lost(&self) -> bool {
        use sqlx::Error as E;
        match self {
            Self::Sql(E::Io(_) | E::PoolTimedOut | E::Protocol(_) | E::WorkerCrashed) => true,
            Self::Sql(E::Database(e)) => e
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|e| [1053, 1927].contains(&e.number())),
            _ => false,
        }
    }
}
