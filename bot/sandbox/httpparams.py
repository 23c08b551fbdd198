"""Reads Bot API request parameters the three ways Telegram accepts them.

JSON bodies, urlencoded forms and multipart forms (python-telegram-bot uses the last two: every
value is text, JSON-encoded when it is an object, and uploads are file parts).
"""

from __future__ import annotations

import json

import aiohttp
from aiohttp import web

from bot.sandbox.botapi import MAX_UPLOAD, Params, as_bool, as_int
from bot.sandbox.world import ApiError, Upload

_JSON_PARAMS = {"reply_markup", "entities", "caption_entities", "media", "allowed_updates"}
_JSON_PARAMS |= {"commands", "scope", "menu_button", "message_ids", "link_preview_options"}
_JSON_PARAMS |= {"reply_parameters"}
_INT_PARAMS = {"chat_id", "message_id", "from_chat_id", "offset", "limit", "timeout", "duration"}
_INT_PARAMS |= {"reply_to_message_id", "cache_time", "max_connections", "message_thread_id"}
_BOOL_PARAMS = {"show_alert", "disable_notification", "protect_content", "drop_pending_updates"}
_BOOL_PARAMS |= {"allow_sending_without_reply", "disable_web_page_preview", "has_spoiler"}


async def read_params(request: web.Request) -> Params:
    """Request parameters from the query string and a JSON, urlencoded or multipart body."""
    params: Params = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON object") from None
            if isinstance(body, dict):
                params.update(body)
        elif request.content_type == "multipart/form-data":
            params.update(await _read_multipart(request))
        else:
            form = await request.post()
            params.update({key: str(value) for key, value in form.items()})
    return normalize_params(params)


async def _read_multipart(request: web.Request) -> Params:
    params: Params = {}
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
            continue
        if part.filename is None:
            params[part.name] = await part.text()
            continue
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk():
            size += len(chunk)
            if size > MAX_UPLOAD:
                raise ApiError(413, "Request Entity Too Large")
            chunks.append(chunk)
        content_type = part.headers.get(aiohttp.hdrs.CONTENT_TYPE)
        params[part.name] = Upload(b"".join(chunks), part.filename, content_type)
    return params


def normalize_params(params: Params) -> Params:
    """Decodes what form fields carry as text: JSON objects, integers and booleans."""
    for key in _JSON_PARAMS & params.keys():
        value = params[key]
        if isinstance(value, str):
            try:
                params[key] = json.loads(value)
            except ValueError:
                what = "reply keyboard markup" if key == "reply_markup" else key
                raise ApiError(400, f"Bad Request: can't parse {what} JSON object") from None
    for key in _INT_PARAMS & params.keys():
        number = as_int(params[key])
        if number is not None:
            params[key] = number
    for key in _BOOL_PARAMS & params.keys():
        if isinstance(params[key], str):
            params[key] = as_bool(params[key])
    return params
