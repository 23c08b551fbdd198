-- The outbox: messages that matter (case confirmations now; status notices and staff questions
-- later), written in the same transaction as what they confirm and sent by one background
-- sender until Telegram accepts them. A row is marked 'sent' only after Telegram said so.
CREATE TABLE outbox (
    outbox_id        INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,               -- case_confirmation, status_notice, ...
    dedup_key        TEXT UNIQUE,                 -- one row per logical message, e.g. case:12:confirmation
    chat_id          INTEGER NOT NULL,
    text             BLOB NOT NULL,               -- sealed with the server key; emptied once sent
    parse_mode       TEXT,                        -- HTML, MarkdownV2 or NULL for plain text
    reply_markup     TEXT,                        -- the markup's JSON, or NULL
    state            TEXT NOT NULL DEFAULT 'pending', -- pending, sent, blocked (403), failed (400)
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,               -- Unix time of the next try
    created_at       TEXT NOT NULL,
    sent_at          TEXT,
    message_id       INTEGER,                     -- the message Telegram created
    last_error       TEXT                         -- error class and Telegram's description only
);
CREATE INDEX outbox_pending ON outbox(state, chat_id, outbox_id);

-- Erasing a relative (PrivacyRepository.erase_user deletes the users row) also drops what we
-- were still going to send them.
CREATE TRIGGER outbox_erase_user AFTER DELETE ON users
BEGIN
    DELETE FROM outbox WHERE chat_id = OLD.user_id;
END;
