"""A local fake of the Telegram Bot API (https://core.telegram.org/bots/api), enough for python-telegram-bot's
polling bot: getMe, deleteWebhook, getUpdates (long poll), sendMessage, answerCallbackQuery, editMessageText.
Tests push user messages and button presses with `say()` / `press()` and read what the bot sent in `sent`."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import Any

from aiohttp import web

BOT = {"id": 4242, "is_bot": True, "first_name": "RootTrading", "username": "roottrading_test_bot"}


class FakeTelegram:
    def __init__(self, token: str) -> None:
        self.token = token
        self.updates: list[dict[str, Any]] = []
        self.new_update = asyncio.Event()
        self.sent: list[dict[str, Any]] = []  # every call but getUpdates/getMe/deleteWebhook: {"method", ...params}
        self.ids = itertools.count(1)
        self.msg_ids = itertools.count(100)
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> FakeTelegram:
        app = web.Application()
        app.router.add_route("POST", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/bot{token}/{method}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.new_update.set()
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # --- what a user does -------------------------------------------------------------------------------
    def _push(self, update: dict[str, Any]) -> None:
        update["update_id"] = next(self.ids)
        self.updates.append(update)
        self.new_update.set()

    def say(self, chat_id: int, text: str) -> None:
        entities = (
            [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] if text.startswith("/") else []
        )
        self._push({"message": self._message(chat_id, text, user=True, entities=entities)})

    def press(self, chat_id: int, message: dict[str, Any], data: str) -> None:
        self._push(
            {
                "callback_query": {
                    "id": f"cb{next(self.ids)}",
                    "from": _user(chat_id),
                    "chat_instance": str(chat_id),
                    "message": message,
                    "data": data,
                }
            }
        )

    def _message(self, chat_id: int, text: str, *, user: bool, **extra: Any) -> dict[str, Any]:
        msg = {
            "message_id": next(self.msg_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": _user(chat_id) if user else BOT,
            "text": text,
        }
        return {**msg, **{k: v for k, v in extra.items() if v}}

    # --- the Bot API ------------------------------------------------------------------------------------
    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        form = await request.post()
        out: dict[str, Any] = {}
        for k, v in form.items():
            try:
                out[k] = json.loads(str(v))
            except ValueError:
                out[k] = str(v)
        return out

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        p = await self._params(request)
        if method == "getMe":
            return _ok(BOT)
        if method in ("deleteWebhook", "setMyCommands", "close", "logOut"):
            return _ok(True)
        if method == "getUpdates":
            return _ok(await self._get_updates(int(p.get("offset", 0) or 0), float(p.get("timeout", 0) or 0)))
        self.sent.append({"method": method, **p})
        if method == "sendMessage":
            extra = {"reply_markup": p.get("reply_markup")}
            return _ok(self._message(int(p["chat_id"]), str(p["text"]), user=False, **extra))
        if method == "editMessageText":
            return _ok(self._message(int(p.get("chat_id") or 0), str(p["text"]), user=False))
        if method == "answerCallbackQuery":
            return _ok(True)
        return web.json_response({"ok": False, "error_code": 404, "description": f"fake: no {method}"}, status=404)

    async def _get_updates(self, offset: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + min(timeout, 2.0)
        while True:
            pending = [u for u in self.updates if u["update_id"] >= offset]
            if pending or time.monotonic() >= deadline:
                return pending
            self.new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.new_update.wait(), max(0.01, deadline - time.monotonic()))

    def messages_to(self, chat_id: int) -> list[dict[str, Any]]:
        return [s for s in self.sent if s["method"] == "sendMessage" and int(s["chat_id"]) == chat_id]


def _user(chat_id: int) -> dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": f"user{chat_id}"}


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})
