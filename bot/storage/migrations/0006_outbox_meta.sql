-- What the bot does once an outbox message is delivered or given up (a staff question records
-- its message id, or is closed and staff told): JSON of ids and codes only, never text.
ALTER TABLE outbox ADD COLUMN meta TEXT;
