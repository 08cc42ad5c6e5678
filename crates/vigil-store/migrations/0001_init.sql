-- vigil schema, version 1.
-- Once released, this file must never change: sqlx stores its checksum in every database.
-- Later changes go in new files (0002_*.sql, ...).
-- Times are unix milliseconds (INTEGER, UTC). Ids of metrics and alerts are the 16 bytes
-- of their UUID. Kept to SQL that PostgreSQL also accepts where that costs nothing.

CREATE TABLE agents (
    id              TEXT    PRIMARY KEY NOT NULL,
    first_seen      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    last_addr       TEXT,
    hostname        TEXT,
    os              TEXT,
    version         TEXT,
    interval_ms     INTEGER,
    spool_bytes     INTEGER NOT NULL DEFAULT 0,
    spool_batches   INTEGER NOT NULL DEFAULT 0,
    dropped_samples INTEGER NOT NULL DEFAULT 0,
    dropped_alerts  INTEGER NOT NULL DEFAULT 0,
    replay_state    BLOB
);

CREATE TABLE metrics (
    id             BLOB    PRIMARY KEY NOT NULL,
    agent_id       TEXT    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    ts             INTEGER NOT NULL,
    boot_epoch     INTEGER NOT NULL,
    idx            INTEGER NOT NULL,
    cpu_percent    REAL    NOT NULL,
    memory_percent REAL    NOT NULL,
    data           TEXT    NOT NULL
);
CREATE INDEX metrics_agent_ts ON metrics (agent_id, ts);
-- Retention deletes by age across all agents.
CREATE INDEX metrics_ts ON metrics (ts);

-- No foreign key on agent_id: server-raised alerts (integrity_failure, replay_attempt)
-- may name an agent that never got a batch through.
CREATE TABLE alerts (
    id          BLOB    PRIMARY KEY NOT NULL,
    ts          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    category    TEXT    NOT NULL,
    severity    INTEGER NOT NULL CHECK (severity BETWEEN 0 AND 4),
    agent_id    TEXT,
    src_ip      TEXT,
    dst_ip      TEXT,
    src_port    INTEGER,
    dst_port    INTEGER,
    src_mac     TEXT,
    summary     TEXT    NOT NULL,
    evidence    TEXT    NOT NULL,
    mitre       TEXT,
    peer_addr   TEXT,
    resolved_at INTEGER
);
CREATE INDEX alerts_ts ON alerts (ts);
CREATE INDEX alerts_category_ts ON alerts (category, ts);
CREATE INDEX alerts_agent_ts ON alerts (agent_id, ts);

CREATE TABLE api_keys (
    id         TEXT    PRIMARY KEY NOT NULL,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    hash       BLOB    NOT NULL CHECK (length(hash) = 32),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
