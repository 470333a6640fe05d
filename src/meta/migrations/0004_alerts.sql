-- Alerting: rules as their JSON body, each alert's state (one per rule and group, e.g. per
-- instance), every state change with the value that caused it, and every notification
-- attempt with its outcome.

CREATE TABLE alert_rules (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    -- the rule as the API took it (JSON), validated before it is stored
    body        TEXT NOT NULL,
    created_ns  INTEGER NOT NULL,
    updated_ns  INTEGER NOT NULL
);

CREATE TABLE alert_states (
    rule_id          INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    -- the group's labels as `key=value` pairs joined by `,` (empty for an ungrouped rule)
    group_key        TEXT NOT NULL,
    -- inactive, pending, firing or resolved
    state            TEXT NOT NULL,
    value            REAL,
    -- when the current state began
    since_ns         INTEGER NOT NULL,
    -- when the alert last started firing, and when it last resolved
    fired_ns         INTEGER,
    resolved_ns      INTEGER,
    -- the last notification sent for the current firing or resolution (0: none yet)
    notified_ns      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (rule_id, group_key)
);

CREATE TABLE alert_history (
    id          INTEGER PRIMARY KEY,
    rule_id     INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    group_key   TEXT NOT NULL,
    at_ns       INTEGER NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    value       REAL
);
CREATE INDEX alert_history_rule ON alert_history (rule_id, at_ns);

CREATE TABLE alert_notifications (
    id          INTEGER PRIMARY KEY,
    rule_id     INTEGER NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
    group_key   TEXT NOT NULL,
    at_ns       INTEGER NOT NULL,
    -- firing or resolved
    status      TEXT NOT NULL,
    receiver    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    -- sent, or failed with the reason
    outcome     TEXT NOT NULL
);
CREATE INDEX alert_notifications_at ON alert_notifications (at_ns);
