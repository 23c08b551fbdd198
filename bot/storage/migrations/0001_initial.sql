-- The first schema: relatives, their drafts in progress, and submitted cases.
CREATE TABLE users (
    user_id          INTEGER PRIMARY KEY,           -- Telegram user id (private chat id)
    language         TEXT,                          -- kk, ru, en; NULL until chosen
    updates_enabled  INTEGER NOT NULL DEFAULT 1,    -- 0 after /stop_updates
    active           INTEGER NOT NULL DEFAULT 1,    -- 0 once Telegram says the bot is blocked
    created_at       TEXT NOT NULL,
    last_seen_at     TEXT NOT NULL
);

CREATE TABLE drafts (
    user_id              INTEGER PRIMARY KEY REFERENCES users(user_id) ON DELETE CASCADE,
    form_version         INTEGER NOT NULL,
    state                BLOB NOT NULL,             -- the engine's state (encrypted when a key is set)
    seq                  INTEGER NOT NULL,          -- the state's step counter, readable for resume
    shown_seq            INTEGER NOT NULL DEFAULT -1, -- the step the relative has actually been shown
    question_message_id  INTEGER,                   -- the message that carries the live buttons
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);

CREATE TABLE cases (
    case_id            INTEGER PRIMARY KEY,
    number             TEXT NOT NULL UNIQUE,        -- what the relative quotes, e.g. 4821-0736
    user_id            INTEGER REFERENCES users(user_id) ON DELETE SET NULL,
    language           TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'new',
    persons_count      INTEGER NOT NULL,
    prefecture         TEXT,                        -- of the first missing person, for statistics
    attachments_count  INTEGER NOT NULL DEFAULT 0,
    consent_share      TEXT,
    consent_publish    TEXT,
    notice_version     INTEGER NOT NULL,
    form_version       INTEGER NOT NULL,
    data               BLOB NOT NULL,               -- every answer (sealed when a key is set)
    submitted_at       TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    assignee_id        INTEGER
);
CREATE INDEX cases_user ON cases(user_id);
CREATE INDEX cases_status ON cases(status, submitted_at);
CREATE INDEX cases_submitted ON cases(submitted_at);

CREATE TABLE case_events (
    event_id   INTEGER PRIMARY KEY,
    case_id    INTEGER NOT NULL REFERENCES cases(case_id) ON DELETE CASCADE,
    at         TEXT NOT NULL,
    actor_id   INTEGER,                             -- NULL for the relative or the system
    kind       TEXT NOT NULL,                       -- submitted, status, note, assigned, ...
    detail     TEXT
);
CREATE INDEX case_events_case ON case_events(case_id, event_id);
