"""A Telegram bot that helps families report relatives who disappeared in Xinjiang."""
