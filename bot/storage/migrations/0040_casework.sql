-- Case work: a status per missing person, links between persons reported more than once,
-- what the bot asked a staff member to type next, and a relative's message waiting for its case.

-- Each person of a case has its own workflow status; the case's status is derived from them
-- (bot/casework/status.py: derive_case_status). Old cases: every person gets the case's status.
CREATE TABLE case_persons (
    case_id     INTEGER NOT NULL REFERENCES cases(case_id) ON DELETE CASCADE,
    person      INTEGER NOT NULL,               -- 1 for the first missing person of the case
    status      TEXT NOT NULL DEFAULT 'new',
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (case_id, person)
) WITHOUT ROWID;

INSERT INTO case_persons (case_id, person, status, updated_at)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
SELECT c.case_id, n.i, c.status, c.updated_at FROM cases c JOIN n ON n.i <= c.persons_count;

-- Possibly the same person in two cases: found at submission (or offline), confirmed or
-- rejected by staff. Ids and codes only: which persons, never their names.
CREATE TABLE person_links (
    link_id        INTEGER PRIMARY KEY,
    case_id        INTEGER NOT NULL REFERENCES cases(case_id) ON DELETE CASCADE,
    person         INTEGER NOT NULL,
    other_case_id  INTEGER NOT NULL REFERENCES cases(case_id) ON DELETE CASCADE,
    other_person   INTEGER NOT NULL,
    certainty      TEXT NOT NULL,                -- certain (same Chinese ID), likely (name, year, place)
    state          TEXT NOT NULL DEFAULT 'suggested', -- suggested, confirmed, rejected
    found_at       TEXT NOT NULL,
    decided_by     INTEGER,
    decided_at     TEXT,
    UNIQUE (case_id, person, other_case_id, other_person)
);
CREATE INDEX person_links_other ON person_links(other_case_id);

-- A reply the bot is waiting for from a staff member (the question for needs_info, an answer
-- to a relative's message): which case and person it is for. The text itself never lands here.
CREATE TABLE staff_prompts (
    chat_id     INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,               -- the bot's prompt, which the reply answers
    staff_id    INTEGER NOT NULL,
    kind        TEXT NOT NULL,                  -- needs_info, ask, staff_add
    case_id     INTEGER REFERENCES cases(case_id) ON DELETE CASCADE, -- NULL for staff_add
    persons     TEXT NOT NULL DEFAULT '',       -- comma-separated person numbers (needs_info)
    created_at  TEXT NOT NULL,
    PRIMARY KEY (chat_id, message_id)
) WITHOUT ROWID;

-- A relative writing to the volunteers: the case they chose (waiting for their message), or
-- their message (sealed with the server key) waiting for them to choose its case.
CREATE TABLE relative_threads (
    user_id     INTEGER PRIMARY KEY REFERENCES users(user_id) ON DELETE CASCADE,
    case_id     INTEGER REFERENCES cases(case_id) ON DELETE CASCADE,
    message_id  INTEGER,
    content     BLOB,
    updated_at  TEXT NOT NULL
);

-- A relative's erasure withdraws the case: its persons too, and nothing links to them anymore.
CREATE TRIGGER case_withdrawn_persons AFTER UPDATE OF status ON cases
WHEN NEW.status = 'withdrawn'
BEGIN
    UPDATE case_persons SET status = 'withdrawn', updated_at = NEW.updated_at
        WHERE case_id = NEW.case_id;
    DELETE FROM person_links WHERE case_id = NEW.case_id OR other_case_id = NEW.case_id;
    DELETE FROM relative_threads WHERE case_id = NEW.case_id;
END;
