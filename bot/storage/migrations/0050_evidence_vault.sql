-- The evidence vault (bot/evidence/): every file a relative sends is fetched from Telegram by
-- a durable job, sealed to the organisation's public key while it streams, and kept under
-- BOT_DATA_DIR/files/<vault_name>. One row per file and draft or case.
CREATE TABLE evidence_files (
    file_row         INTEGER PRIMARY KEY,
    user_id          INTEGER,                 -- who sent it; NULL once they are erased
    case_id          INTEGER REFERENCES cases(case_id) ON DELETE CASCADE, -- NULL while in a draft
    file_unique_id   TEXT NOT NULL,           -- Telegram's stable id of the content
    ref              BLOB NOT NULL,           -- file_id, kind, mime...: sealed with the server key
                                              -- (the bot needs it to fetch the file)
    custody          BLOB,                    -- chain of custody, sealed to the organisation's
                                              -- key: sha256, size, mime, received_at, file_unique_id
    vault_name       TEXT NOT NULL UNIQUE,    -- random; the sealed file's name in BOT_DATA_DIR/files
    state            TEXT NOT NULL DEFAULT 'pending', -- pending, stored, failed, erase
    reason           TEXT,                    -- why it could not be fetched: too_big, gone, ...
    size             INTEGER,                 -- bytes of the sealed file (disk use)
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,           -- Unix time of the next try
    received_at      TEXT NOT NULL,
    stored_at        TEXT
);
CREATE INDEX evidence_files_due ON evidence_files(state, next_attempt_at);
CREATE INDEX evidence_files_case ON evidence_files(case_id);
CREATE INDEX evidence_files_user ON evidence_files(user_id, case_id);
-- One row per file while it is in a draft; a case may hold a file a draft also holds.
CREATE UNIQUE INDEX evidence_files_draft ON evidence_files(user_id, file_unique_id)
    WHERE case_id IS NULL AND state != 'erase';

-- /delete (PrivacyRepository.erase_user deletes the users row): every file they sent is
-- marked for erasure; the vault worker removes the sealed file, then the row.
CREATE TRIGGER evidence_erase_user AFTER DELETE ON users
BEGIN
    UPDATE evidence_files SET state = 'erase', ref = X'', custody = NULL, user_id = NULL
     WHERE user_id = OLD.user_id;
END;

-- A case whose answers are emptied (withdrawn by erasure) loses its files too.
CREATE TRIGGER evidence_erase_case AFTER UPDATE OF data ON cases
WHEN length(NEW.data) = 0
BEGIN
    UPDATE evidence_files SET state = 'erase', ref = X'', custody = NULL
     WHERE case_id = NEW.case_id;
END;
