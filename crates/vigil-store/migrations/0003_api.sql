-- vigil schema, version 3: what people see and do through the API and the dashboard.
-- Once released, this file must never change (sqlx stores its checksum). Times are unix
-- milliseconds; ids of blocks, silences and incidents are UUID text.

-- Alert status as people set it: acknowledged (someone is on it) and resolved by hand.
-- `resolved_at` already exists (agents resolve their own alerts); `resolved_by` is NULL
-- when the agent resolved it.
ALTER TABLE alerts ADD COLUMN acked_at INTEGER;
ALTER TABLE alerts ADD COLUMN acked_by TEXT;
ALTER TABLE alerts ADD COLUMN resolved_by TEXT;
-- Cursor paging walks (ts, id) downwards.
CREATE INDEX alerts_ts_id ON alerts (ts, id);
CREATE INDEX alerts_src_ts ON alerts (src_ip, ts);

-- Roll-ups kept by triggers so the overview never scans the alerts table: alerts per
-- hour, severity and category, and alerts per hour and source address.
CREATE TABLE alert_hourly (
    hour     INTEGER NOT NULL,
    severity INTEGER NOT NULL,
    category TEXT    NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (hour, severity, category)
);
CREATE TABLE alert_sources_hourly (
    hour   INTEGER NOT NULL,
    src_ip TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (hour, src_ip)
);
INSERT INTO alert_hourly (hour, severity, category, n)
    SELECT ts / 3600000, severity, category, COUNT(*) FROM alerts GROUP BY 1, 2, 3;
INSERT INTO alert_sources_hourly (hour, src_ip, n)
    SELECT ts / 3600000, src_ip, COUNT(*) FROM alerts WHERE src_ip IS NOT NULL GROUP BY 1, 2;

CREATE TRIGGER alerts_rollup_insert AFTER INSERT ON alerts BEGIN
    INSERT INTO alert_hourly (hour, severity, category, n)
        VALUES (NEW.ts / 3600000, NEW.severity, NEW.category, 1)
        ON CONFLICT (hour, severity, category) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER alerts_rollup_insert_source AFTER INSERT ON alerts WHEN NEW.src_ip IS NOT NULL BEGIN
    INSERT INTO alert_sources_hourly (hour, src_ip, n)
        VALUES (NEW.ts / 3600000, NEW.src_ip, 1)
        ON CONFLICT (hour, src_ip) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER alerts_rollup_delete AFTER DELETE ON alerts BEGIN
    UPDATE alert_hourly SET n = n - 1
        WHERE hour = OLD.ts / 3600000 AND severity = OLD.severity AND category = OLD.category;
    UPDATE alert_sources_hourly SET n = n - 1
        WHERE OLD.src_ip IS NOT NULL AND hour = OLD.ts / 3600000 AND src_ip = OLD.src_ip;
END;

-- Addresses or networks to block. Recorded and shown; agents enforce them later.
CREATE TABLE blocks (
    id         TEXT    PRIMARY KEY NOT NULL,
    target     TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    removed_at INTEGER,
    removed_by TEXT
);
CREATE INDEX blocks_expires ON blocks (expires_at);

-- Silences mute matching alerts for a while. At least one matcher is set.
CREATE TABLE silences (
    id         TEXT    PRIMARY KEY NOT NULL,
    category   TEXT,
    agent_id   TEXT,
    source     TEXT,
    comment    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    removed_at INTEGER,
    removed_by TEXT
);
CREATE INDEX silences_expires ON silences (expires_at);

-- Every state-changing call: who, what, when, and how it ended.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ts         INTEGER NOT NULL,
    actor_key  TEXT,
    actor_name TEXT,
    role       TEXT,
    via        TEXT,
    client     TEXT,
    method     TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    status     INTEGER NOT NULL,
    detail     TEXT
);
CREATE INDEX audit_log_ts ON audit_log (ts);

-- Dashboard sessions: only the SHA-256 of the cookie value is stored. The role is the
-- key's, read at each request, so revoking the key ends its sessions.
CREATE TABLE sessions (
    id_hash    BLOB    PRIMARY KEY NOT NULL CHECK (length(id_hash) = 32),
    key_id     TEXT    NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    client     TEXT
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Incidents: related alerts grouped by the pipeline, kept for the API.
CREATE TABLE incidents (
    id         TEXT    PRIMARY KEY NOT NULL,
    opened_at  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    severity   INTEGER NOT NULL CHECK (severity BETWEEN 0 AND 4),
    title      TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    target     TEXT,
    alert_ids  TEXT    NOT NULL,
    evidence   TEXT    NOT NULL
);
CREATE INDEX incidents_updated ON incidents (updated_at);
CREATE INDEX incidents_status_updated ON incidents (status, updated_at);
