"""The Bot API methods that change what was sent: edits, deletions and callback answers."""

from __future__ import annotations

from bot.sandbox.apichecks import (
    DELETE_WINDOW,
    NOT_MODIFIED,
    ApiCore,
    Params,
    as_bool,
    as_int,
)
from bot.sandbox.htmlcheck import Entity, to_api_entities
from bot.sandbox.world import (
    CALLBACK_QUERY_LIFETIME,
    JSON,
    ApiError,
    CallbackAnswer,
    ChatState,
    SentMessage,
)


class EditingApi(ApiCore):
    """editMessage*, deleteMessage(s), answerCallbackQuery."""

    # -- editing and deleting ------------------------------------------------------------

    def edit_message_text(self, p: Params) -> JSON:
        chat, message = self.find_message(p, "message to edit not found")
        if not message.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        if message.kind != "text":
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        plain, entities = self.format_text(
            p.get("text"), p.get("parse_mode"), p.get("entities"), caption=False
        )
        markup = self.inline_markup(p)
        if (plain, entities, markup) == (message.plain, message.entities, message.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        message.text, message.parse_mode = str(p.get("text")), p.get("parse_mode")
        self._apply_edit(chat, message, "editMessageText", plain, entities, markup, "text")
        return message.raw

    def edit_message_caption(self, p: Params) -> JSON:
        chat, message = self.find_message(p, "message to edit not found")
        if not message.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        if message.kind == "text":
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        plain, entities = self.format_text(
            p.get("caption"), p.get("parse_mode"), p.get("caption_entities"), caption=True
        )
        markup = self.inline_markup(p)
        if (plain, entities, markup) == (message.plain, message.entities, message.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        message.caption, message.parse_mode = p.get("caption"), p.get("parse_mode")
        self._apply_edit(chat, message, "editMessageCaption", plain, entities, markup, "caption")
        return message.raw

    def edit_message_reply_markup(self, p: Params) -> JSON:
        chat, message = self.find_message(p, "message to edit not found")
        if not message.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        markup = self.inline_markup(p)
        if markup == message.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        field = "text" if message.kind == "text" else "caption"
        self._apply_edit(
            chat, message, "editMessageReplyMarkup", message.plain, message.entities, markup, field
        )
        return message.raw

    def inline_markup(self, p: Params) -> JSON | None:
        """An edit's markup: only inline keyboards; leaving it out removes the keyboard."""
        markup = self.reply_markup(p)
        if markup is not None and "inline_keyboard" not in markup:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        if markup is not None and not markup["inline_keyboard"]:
            return None
        return markup

    def _apply_edit(
        self,
        chat: ChatState,
        message: SentMessage,
        method: str,
        plain: str,
        entities: list[Entity],
        markup: JSON | None,
        field: str,
    ) -> None:
        message.plain, message.entities, message.reply_markup = plain, entities, markup
        raw = message.raw
        entity_field = "entities" if field == "text" else "caption_entities"
        raw.pop(entity_field, None)
        raw.pop(field, None)
        if plain:
            raw[field] = plain
        if entities:
            raw[entity_field] = to_api_entities(plain, entities)
        raw.pop("reply_markup", None)
        if markup is not None:
            raw["reply_markup"] = markup
        raw["edit_date"] = int(self.world.now())
        message.edits.append({"method": method, "plain": plain, "reply_markup": markup})
        chat.notify()

    def delete_message(self, p: Params) -> bool:
        chat, message = self.find_message(p, "message to delete not found")
        self._delete(chat, message)
        return True

    def delete_messages(self, p: Params) -> bool:
        chat_id = as_int(p.get("chat_id"))
        chat = self.world.chats.get(chat_id) if chat_id is not None else None
        if chat is None or not chat.known:
            raise ApiError(400, "Bad Request: chat not found")
        ids = p.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise ApiError(400, "Bad Request: message_ids must contain 1-100 message identifiers")
        for message_id in ids:
            message = chat.by_id.get(as_int(message_id) or 0)
            if message is not None and not message.deleted:
                self._delete(chat, message)
        return True

    def _delete(self, chat: ChatState, message: SentMessage) -> None:
        if self.world.now() - message.date > DELETE_WINDOW:
            raise ApiError(400, "Bad Request: message can't be deleted for everyone")
        message.deleted = True
        chat.notify()

    def answer_callback_query(self, p: Params) -> bool:
        query = self.world.queries.get(str(p.get("callback_query_id", "")))
        expired = query is None or self.world.now() - query.created_at > CALLBACK_QUERY_LIFETIME
        if query is None or expired or query.answer is not None:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        text = p.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        query.answer = CallbackAnswer(
            query_id=query.id,
            text=text if isinstance(text, str) else None,
            show_alert=as_bool(p.get("show_alert")),
            url=p.get("url") if isinstance(p.get("url"), str) else None,
        )
        chat = self.world.chats.get(query.chat_id)
        if chat is not None:
            chat.answers.append(query.answer)
            chat.notify()
        return True
