-- Staff follow-up: staff added in the bot, the audit log, and questions sent to relatives.
-- Personal text of case events (notes, questions, answers) is kept in case_events.detail,
-- sealed to the organisation's key; erasing a relative's data clears that column.
CREATE TABLE staff_members (
    user_id   INTEGER PRIMARY KEY,              -- Telegram user id
    added_by  INTEGER NOT NULL,                 -- the admin who added them
    added_at  TEXT NOT NULL
);

CREATE TABLE audit_log (
    audit_id  INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    actor_id  INTEGER,                          -- NULL for the command line or the system
    action    TEXT NOT NULL,                    -- export, status, note, assign, staff_add, ...
    detail    TEXT                              -- JSON of ids, codes, counts and filters only
);
CREATE INDEX audit_log_at ON audit_log(at);

CREATE TABLE case_questions (
    question_id     INTEGER PRIMARY KEY,
    case_id         INTEGER NOT NULL REFERENCES cases(case_id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    asked_by        INTEGER NOT NULL,
    asked_at        TEXT NOT NULL,
    message_id      INTEGER,                    -- the bot's message in the relative's chat
    last_answer_at  TEXT,
    closed          INTEGER NOT NULL DEFAULT 0  -- 1 when it could not be delivered
);
CREATE INDEX case_questions_user ON case_questions(user_id, question_id);

CREATE INDEX cases_assignee ON cases(assignee_id, status);
