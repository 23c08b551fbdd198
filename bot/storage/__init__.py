"""Storage: the only place in the bot with SQL (aiosqlite, WAL, numbered migrations)."""
