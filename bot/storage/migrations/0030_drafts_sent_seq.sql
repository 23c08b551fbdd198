-- The latest step whose question the bot began to send (it may be on screen even if the bot
-- died before recording it as shown): a typed answer to it is kept, not thrown away.
ALTER TABLE drafts ADD COLUMN sent_seq INTEGER NOT NULL DEFAULT -1;
