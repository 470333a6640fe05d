-- Saved views, post-mortems, their timelines and annotations. Times are Unix nanoseconds.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE views (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    note          TEXT NOT NULL DEFAULT '',
    tags          TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    kind          TEXT NOT NULL,
    url           TEXT NOT NULL,
    relative      INTEGER NOT NULL DEFAULT 0,
    start_ns      INTEGER NOT NULL,
    end_ns        INTEGER NOT NULL,
    pinned_at_ns  INTEGER,                      -- NULL when the view keeps no evidence
    pinned_rows   INTEGER,
    pinned_bytes  INTEGER,
    created_ns    INTEGER NOT NULL,
    updated_ns    INTEGER NOT NULL
);

CREATE TABLE postmortems (
    id                INTEGER PRIMARY KEY,
    title             TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('draft', 'final')),
    incident_start_ns INTEGER,
    incident_end_ns   INTEGER,
    impact            TEXT NOT NULL DEFAULT '',
    summary           TEXT NOT NULL DEFAULT '',
    root_cause        TEXT NOT NULL DEFAULT '',
    version           INTEGER NOT NULL DEFAULT 1,
    created_ns        INTEGER NOT NULL,
    updated_ns        INTEGER NOT NULL
);

-- The views of a post-mortem, in order. A deleted view leaves its name behind.
CREATE TABLE postmortem_views (
    id            INTEGER PRIMARY KEY,
    postmortem_id INTEGER NOT NULL REFERENCES postmortems (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    view_id       INTEGER REFERENCES views (id) ON DELETE SET NULL,
    view_name     TEXT NOT NULL,
    note          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX postmortem_views_by_postmortem ON postmortem_views (postmortem_id, position);

CREATE TABLE action_items (
    id            INTEGER PRIMARY KEY,
    postmortem_id INTEGER NOT NULL REFERENCES postmortems (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    owner         TEXT NOT NULL DEFAULT '',
    text          TEXT NOT NULL,
    done          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE timeline_entries (
    id             INTEGER PRIMARY KEY,
    postmortem_id  INTEGER NOT NULL REFERENCES postmortems (id) ON DELETE CASCADE,
    time_ns        INTEGER NOT NULL,
    text           TEXT NOT NULL,
    -- 'manual', or the kind of suggestion it was accepted from
    source         TEXT NOT NULL DEFAULT 'manual',
    suggestion_key TEXT,
    UNIQUE (postmortem_id, suggestion_key)
);

CREATE TABLE dismissed_suggestions (
    postmortem_id  INTEGER NOT NULL REFERENCES postmortems (id) ON DELETE CASCADE,
    suggestion_key TEXT NOT NULL,
    PRIMARY KEY (postmortem_id, suggestion_key)
);

CREATE TABLE annotations (
    id         INTEGER PRIMARY KEY,
    time_ns    INTEGER NOT NULL,
    service    TEXT,                            -- NULL: global
    text       TEXT NOT NULL,
    created_ns INTEGER NOT NULL
);
CREATE INDEX annotations_by_time ON annotations (time_ns);
