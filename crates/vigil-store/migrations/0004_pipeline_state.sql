-- vigil schema, version 4: the alert pipeline's memory (open alert records, incidents,
-- correlation windows, baselines, anomaly models, agent presence), saved as one JSON
-- document so a restart continues where it stopped. Once released, this file must never
-- change (sqlx stores its checksum). Times are unix milliseconds.

-- A singleton: the CHECK keeps it to one row.
CREATE TABLE pipeline_state (
    id       INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    saved_at INTEGER NOT NULL,
    state    TEXT    NOT NULL
);
