-- Silences: while one is active, alerts whose labels match all its matchers send nothing.

CREATE TABLE alert_silences (
    id          INTEGER PRIMARY KEY,
    -- [{"name", "value", "isRegex", "isEqual"}] as Alertmanager writes matchers (JSON)
    matchers    TEXT NOT NULL,
    starts_ns   INTEGER NOT NULL,
    ends_ns     INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    comment     TEXT NOT NULL,
    created_ns  INTEGER NOT NULL
);
