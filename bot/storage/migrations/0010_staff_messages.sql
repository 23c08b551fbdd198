-- Messages with case content that the bot sent to staff (cards, answers, files, exports), kept
-- so that they can be taken back: after BOT_CARD_TTL_HOURS, and at once when the relative
-- erases their data. Ids and times only, never content.
CREATE TABLE staff_messages (
    chat_id     INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    case_id     INTEGER,                      -- NULL for an export (it may hold many cases)
    kind        TEXT NOT NULL,                -- card, answer, file, export
    sent_at     REAL NOT NULL,                -- Unix time
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX staff_messages_sent ON staff_messages(sent_at);
CREATE INDEX staff_messages_case ON staff_messages(case_id);

-- New-case alerts: every case is announced once, alone or (past BOT_ALERTS_PER_HOUR) in the
-- hourly digest. A case without a row was not announced yet (a crash right after the submit):
-- the start-up announces it.
CREATE TABLE case_alerts (
    case_id  INTEGER PRIMARY KEY REFERENCES cases(case_id) ON DELETE CASCADE,
    at       REAL NOT NULL,                   -- Unix time
    how      TEXT NOT NULL                    -- alert, digest_pending, digest, before
);
CREATE INDEX case_alerts_how ON case_alerts(how, at);
INSERT INTO case_alerts (case_id, at, how) SELECT case_id, 0, 'before' FROM cases;
