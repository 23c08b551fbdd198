"""Telegram-facing code: turns updates into engine calls and results into messages."""
