use std::path::PathBuf;

/// Why a storage operation failed. Every message names the database file and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The directory that should hold the database file does not exist.
    #[error(
        "cannot open database {}: directory {} does not exist; create it or choose another path",
        .path.display(), .dir.display()
    )]
    NoParentDir {
        /// The database path asked for.
        path: PathBuf,
        /// Its missing parent directory.
        dir: PathBuf,
    },

    /// The database path names a directory.
    #[error("cannot open database {}: it is a directory; give the path of a database file", .path.display())]
    IsDirectory {
        /// The database path asked for.
        path: PathBuf,
    },

    /// SQLite could not open or set up the file.
    #[error(
        "cannot open database {}: {source}; check that it is a vigil database and that this user may read and write it and its directory",
        .path.display()
    )]
    Open {
        /// The database path.
        path: PathBuf,
        /// What SQLite or sqlx said.
        #[source]
        source: sqlx::Error,
    },

    /// The database holds a schema migration this build does not know: a newer vigil wrote it.
    #[error(
        "database {} was written by a newer vigil (it has schema migration {version}, unknown to this build): upgrade vigil",
        .path.display()
    )]
    NewerSchema {
        /// The database path.
        path: PathBuf,
        /// The unknown migration version found in the database.
        version: i64,
    },

    /// The schema could not be brought up to date.
    #[error(
        "cannot bring the schema of database {} up to date: {source}; restore it from a backup or move it aside to start afresh",
        .path.display()
    )]
    Migrate {
        /// The database path.
        path: PathBuf,
        /// What the migrator said.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A query failed (disk full, I/O error, store closed, pool timed out...).
    #[error("database {}: {op} failed: {source}", .path.display())]
    Query {
        /// The database path.
        path: PathBuf,
        /// The operation that failed, e.g. `ingest`.
        op: &'static str,
        /// What SQLite or sqlx said.
        #[source]
        source: sqlx::Error,
    },

    /// An API key with this id is already stored.
    #[error("database {}: an API key with id {id:?} already exists; choose another id", .path.display())]
    ApiKeyExists {
        /// The database path.
        path: PathBuf,
        /// The id that clashed.
        id: String,
    },

    /// A row read back does not parse (unknown category, bad JSON, out-of-range value).
    #[error(
        "database {}: row {id} of table {table} cannot be read ({detail}); the file may be damaged or was edited by another program",
        .path.display()
    )]
    Corrupt {
        /// The database path.
        path: PathBuf,
        /// The table the row is in.
        table: &'static str,
        /// The row's id, as text.
        id: String,
        /// What is wrong with it.
        detail: String,
    },

    /// A value could not be encoded as JSON for storage.
    #[error("database {}: cannot encode {what} {id} as JSON: {source}", .path.display())]
    Encode {
        /// The database path.
        path: PathBuf,
        /// What was being encoded, e.g. `sample`.
        what: &'static str,
        /// Its id.
        id: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
}
