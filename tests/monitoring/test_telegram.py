"""The Telegram bot against a local fake Bot API (python-telegram-bot pointed at it with base_url), as the
exchange is tested against fake Binance: allow-listed chats get answers, others nothing; mutating commands act
only after "Confirm"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from tests.monitoring.fake_telegram import FakeTelegram

TOKEN = "123456:TEST-token"
ALLOWED, STRANGER = 1001, 666


async def until(pred: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        await asyncio.sleep(0.02)
    return pred()


async def test_bot_answers_the_allow_list_only_and_confirms_mutations(tmp_path: Path) -> None:
    async with FakeTelegram(TOKEN) as tg:
        settings = load_settings(
            symbols="BTCUSDT",
            database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db",
            api_token="api-token",
            data_dir=tmp_path,
            telegram_bot_token=TOKEN,
            telegram_chat_ids=str(ALLOWED),
            telegram_base_url=tg.base_url,
            telegram_poll_timeout_s=1,
        )
        host = Host(settings, ["portfolio", "pnl", "trader", "risk", "telegram"], clock=SimClock())
        # the bot calls the platform's HTTP API; here that is the app itself, in process
        http = host.ctx.wiring.telegram_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)))
        await host.start()
        try:
            bot = host.services["telegram"]
            trader = host.services["trader"].core  # type: ignore[attr-defined]

            tg.say(STRANGER, "/status")
            tg.say(STRANGER, "/pause")
            tg.say(ALLOWED, "/help")
            assert await until(lambda: tg.messages_to(ALLOWED))
            assert "/close <cycle>" in tg.messages_to(ALLOWED)[0]["text"]

            for cmd, expect in (
                ("/status", "State: trading"),
                ("/profit", "Realised:"),
                ("/balance", "Balances:"),
                ("/daily", "Last 7 days"),
            ):
                n = len(tg.messages_to(ALLOWED))
                tg.say(ALLOWED, cmd)
                assert await until(lambda n=n: len(tg.messages_to(ALLOWED)) > n), cmd
                assert expect in tg.messages_to(ALLOWED)[-1]["text"], (cmd, tg.messages_to(ALLOWED)[-1])

            # /pause asks first: nothing changes until Confirm
            n = len(tg.messages_to(ALLOWED))
            tg.say(ALLOWED, "/pause")
            assert await until(lambda: len(tg.messages_to(ALLOWED)) > n)
            ask = tg.messages_to(ALLOWED)[-1]
            buttons = ask["reply_markup"]["inline_keyboard"][0]
            assert [b["text"] for b in buttons] == ["Confirm", "Cancel"]
            await asyncio.sleep(0.3)
            assert not trader.paused
            question = {"message_id": 999, "date": 0, "chat": {"id": ALLOWED, "type": "private"}, "text": ask["text"]}
            tg.press(STRANGER, {**question, "chat": {"id": STRANGER, "type": "private"}}, buttons[0]["callback_data"])
            tg.press(ALLOWED, question, buttons[1]["callback_data"])  # Cancel
            assert await until(
                lambda: any(s["method"] == "editMessageText" and s["text"] == "Cancelled." for s in tg.sent)
            )
            assert not trader.paused
            tg.press(ALLOWED, question, buttons[0]["callback_data"])  # Confirm
            assert await until(lambda: trader.paused)
            assert await until(
                lambda: any(s["method"] == "answerCallbackQuery" and "Paused" in s.get("text", "") for s in tg.sent)
            )

            n = len(tg.messages_to(ALLOWED))
            tg.say(ALLOWED, "/close cy-nope")
            assert await until(lambda: len(tg.messages_to(ALLOWED)) > n)
            tg.press(
                ALLOWED, question, tg.messages_to(ALLOWED)[-1]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            )
            assert await until(lambda: any(s["method"] == "editMessageText" and "404" in s["text"] for s in tg.sent))

            # the stranger's commands and button press produced nothing at all
            assert tg.messages_to(STRANGER) == []
            assert all(int(s.get("chat_id", ALLOWED)) != STRANGER for s in tg.sent)
            assert bot.stats["confirmed"] == 1  # type: ignore[attr-defined]
        finally:
            await host.stop()
            await http.aclose()
