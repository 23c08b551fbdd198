"""How the bot talks to Telegram: the HTTP transport, long polling, retries and error texts.

- ``http``: the Bot API over aiohttp (python-telegram-bot's ``BaseRequest``);
- ``polling``: getUpdates that one unreadable update cannot stop;
- ``retries``: ``ResilientRateLimiter`` and the rule for which calls may be repeated;
- ``errors``: what is kept about a failed call, and how long Telegram asks us to wait.

The outbox (bot/services/outbox.py) and the broadcast sender (bot/services/broadcast.py) build
on these.
"""
