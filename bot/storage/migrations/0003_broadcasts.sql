-- Broadcasts: news from the organisation to relatives, each in their own language.
-- A broadcast and one row per recipient are written in one transaction before the first
-- message goes out, so a crash can never lose track of who still has to receive it.
CREATE TABLE broadcasts (
    broadcast_id         INTEGER PRIMARY KEY,
    state                TEXT NOT NULL DEFAULT 'queued',  -- queued, sending, done, cancelled
    audience             TEXT NOT NULL,                   -- all, lang:kk, open-cases, status:new
    texts                TEXT NOT NULL,                   -- JSON {"kk": html, "ru": html, ...}
    fallback             TEXT NOT NULL,                   -- whose text a missing language gets
    photo_file_id        TEXT,                            -- Telegram's id of the photo, once known
    photo                BLOB,                            -- a photo from the command line, until sent
    created_by           INTEGER,                         -- the admin; NULL from the command line
    notify_chat_id       INTEGER,                         -- where progress is shown
    progress_message_id  INTEGER,
    notify_language      TEXT NOT NULL DEFAULT 'en',
    total                INTEGER NOT NULL,
    created_at           TEXT NOT NULL,
    started_at           TEXT,
    finished_at          TEXT
);
CREATE INDEX broadcasts_state ON broadcasts(state, broadcast_id);

CREATE TABLE broadcast_recipients (
    broadcast_id  INTEGER NOT NULL REFERENCES broadcasts(broadcast_id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    language      TEXT NOT NULL,                 -- the language group whose message they get
    state         TEXT NOT NULL DEFAULT 'pending',
        -- pending, sending (handed to Telegram, result not yet recorded), sent,
        -- blocked (403), failed, skipped (turned updates off meanwhile), cancelled
    attempts      INTEGER NOT NULL DEFAULT 0,
    not_before    REAL NOT NULL DEFAULT 0,       -- unix time: back-off before a retry
    message_id    INTEGER,                       -- the message in their chat, once sent
    error         TEXT,                          -- error class and Telegram's description only
    PRIMARY KEY (broadcast_id, user_id)
) WITHOUT ROWID;
CREATE INDEX broadcast_recipients_todo ON broadcast_recipients(broadcast_id, state, not_before);
CREATE INDEX broadcast_recipients_user ON broadcast_recipients(user_id);

-- What an admin is composing in the /broadcast dialog (survives restarts, like drafts).
CREATE TABLE broadcast_drafts (
    admin_id    INTEGER PRIMARY KEY,
    data        TEXT NOT NULL,                   -- JSON of the dialog's state
    updated_at  TEXT NOT NULL
);
