"""Offline stand-in for the Telegram Bot API: try and test the bot without Telegram."""
