-- vigil schema, version 2: network statistics from the agents' packet capture.
-- Once released, this file must never change (sqlx stores its checksum).
-- One row per agent per interval; `data` is the JSON of vigil_model::NetStats.

CREATE TABLE netstats (
    id       BLOB    PRIMARY KEY NOT NULL,
    agent_id TEXT    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    ts       INTEGER NOT NULL,
    data     TEXT    NOT NULL
);
CREATE INDEX netstats_agent_ts ON netstats (agent_id, ts);
-- Retention deletes by age across all agents.
CREATE INDEX netstats_ts ON netstats (ts);
