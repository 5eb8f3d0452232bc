"""Telegram bot service: /status /profit /balance /daily /pause /resume /close <cycle> /help.

Why through the platform's own HTTP API (with the API token) rather than calling peers: the same routes, checks
and audit logs as the dashboard, and the bot works whether the services share its process or not. Only chats in
TELEGRAM_CHAT_IDS are answered; any other chat gets nothing at all (no handler matches it, so the bot does not
even reveal that it exists). Mutating commands answer with an inline keyboard and act only on "Confirm".
TELEGRAM_BASE_URL points the client at another Bot API server (a local Bot API server, or the tests' fake).
"""

from __future__ import annotations

from typing import Any

import httpx
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from roottrading.runtime.service import HealthStatus, Service

HELP = (
    "/status - trading state, open cycles, equity\n"
    "/profit - realised and unrealised PnL\n"
    "/balance - balances and their value\n"
    "/daily - realised PnL of the last 7 days\n"
    "/pause - stop new entries (asks to confirm)\n"
    "/resume - resume trading, lifting risk pauses and the kill switch (asks to confirm)\n"
    "/close <cycle> - close a cycle at market (asks to confirm)\n"
    "/help - this list"
)
MUTATING = {"pause": "Pause new entries?", "resume": "Resume trading?", "close": "Close cycle {arg} at market?"}


class TelegramService(Service):
    name = "telegram"
    description = "Telegram bot: status, PnL, balances and confirmed control for allow-listed chats."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.token = s.telegram_bot_token.get_secret_value()
        self.chats = set(s.telegram_chat_ids)
        self.app: Application | None = None
        self.http: httpx.AsyncClient | None = None
        self.stats = {"commands": 0, "confirmed": 0, "errors": 0}

    # --- lifecycle --------------------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.token:
            return
        if not self.chats:
            self.log.warning("TELEGRAM_BOT_TOKEN set but TELEGRAM_CHAT_IDS empty: the bot will answer nobody")
        self.http = self.ctx.wiring.telegram_http or httpx.AsyncClient(timeout=10.0)  # tests: in process
        s = self.ctx.settings
        app = Application.builder().token(self.token).base_url(s.telegram_base_url).build()
        allowed = filters.Chat(chat_id=sorted(self.chats))
        for cmd in ("status", "profit", "balance", "daily", "help", "start"):
            app.add_handler(CommandHandler(cmd, self._read, filters=allowed))
        for cmd in MUTATING:
            app.add_handler(CommandHandler(cmd, self._ask, filters=allowed))
        app.add_handler(CallbackQueryHandler(self._confirm))
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=s.telegram_poll_timeout_s, drop_pending_updates=True)
        self.app = app
        self.log.info("telegram bot polling", chats=len(self.chats))

    async def stop(self) -> None:
        app, self.app = self.app, None
        if app is not None:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            await app.stop()
            await app.shutdown()
        if self.http is not None and self.http is not self.ctx.wiring.telegram_http:
            await self.http.aclose()

    async def health(self) -> HealthStatus:
        return HealthStatus(details={"enabled": bool(self.token), "chats": len(self.chats), **self.stats})

    # --- the platform's API -----------------------------------------------------------------------------
    def _url(self, service: str, path: str) -> str:
        s = self.ctx.settings
        if self.ctx.peer(service) is not None:  # one-process: every service under /api/<service>
            return f"http://127.0.0.1:{s.http_port}/api/{service}{path}"
        return f"http://127.0.0.1:{s.service_ports.get(service, s.http_port)}{path}"

    async def _call(self, method: str, service: str, path: str, **params: Any) -> Any:
        assert self.http is not None
        headers = {"Authorization": f"Bearer {self.ctx.settings.api_token.get_secret_value()}"}
        resp = await self.http.request(method, self._url(service, path), params=params or None, headers=headers)
        if resp.status_code >= 400:
            detail = (
                resp.json().get("detail")
                if resp.headers.get("content-type", "").startswith("application/json")
                else resp.text
            )
            raise RuntimeError(f"{resp.status_code}: {detail}")
        return resp.json()

    # --- commands ---------------------------------------------------------------------------------------
    async def _read(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_message.text is not None
        self.stats["commands"] += 1
        cmd = update.effective_message.text.split()[0].lstrip("/").split("@")[0]
        try:
            text = await self.answer(cmd)
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            self.stats["errors"] += 1
            text = f"Could not read {cmd}: {exc}"
        await update.effective_message.reply_text(text)

    async def answer(self, cmd: str) -> str:
        if cmd == "status":
            tr = await self._call("GET", "trader", "/health")
            rk = await self._call("GET", "risk", "/state")
            state = (
                "KILL SWITCH"
                if tr.get("killed") or rk.get("killed")
                else "paused"
                if tr.get("paused") or rk.get("paused")
                else "trading"
            )
            return (
                f"State: {state}\nOpen cycles: {tr.get('open_cycles')}\nEquity: {rk.get('equity')}\n"
                f"Drawdown: {rk.get('drawdown_pct')}%\nToday realised: {rk.get('realised_pnl_today')}"
            )
        if cmd == "profit":
            p = await self._call("GET", "pnl", "/summary")
            return (
                f"Realised: {p.get('realised_pnl')} {p.get('quote_asset', '')}\nUnrealised: {p.get('unrealised_pnl')}\n"
                f"Total: {p.get('total_pnl')}\nFees: {p.get('fees')}\nClosed cycles: {p.get('closed_cycles')}"
            )
        if cmd == "balance":
            rows = await self._call("GET", "portfolio", "/balances")
            lines = [
                f"{b['asset']}: {b['total']} (~{b['value_quote']})" for b in rows if b.get("total") not in ("0", None)
            ]
            return "Balances:\n" + ("\n".join(lines) or "none")
        if cmd == "daily":
            rows = await self._call("GET", "pnl", "/daily", days=7)
            lines = [
                f"{r.get('day', r.get('key'))}: {r.get('realised_pnl', r.get('pnl'))} ({r.get('cycles', r.get('count', '?'))} cycles)"
                for r in rows
            ]
            return "Last 7 days:\n" + ("\n".join(lines) or "no closed cycles")
        return HELP

    async def _ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        assert msg is not None and msg.text is not None
        self.stats["commands"] += 1
        parts = msg.text.split()
        action = parts[0].lstrip("/").split("@")[0]
        arg = parts[1] if len(parts) > 1 else ""
        if action == "close" and not arg:
            await msg.reply_text("Usage: /close <cycle id>")
            return
        data = f"yes:{action}:{arg}"
        if len(data.encode()) > 64:  # Telegram's limit for callback data
            await msg.reply_text("That cycle id is too long.")
            return
        keyboard = InlineKeyboardMarkup(
            [[InlineKeyboardButton("Confirm", callback_data=data), InlineKeyboardButton("Cancel", callback_data="no")]]
        )
        await msg.reply_text(MUTATING[action].format(arg=arg), reply_markup=keyboard)

    async def _confirm(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        q = update.callback_query
        if q is None:
            return
        chat = q.message.chat.id if q.message is not None else None
        if chat not in self.chats:  # a button press from anywhere else: no answer at all
            return
        data = q.data or ""
        if not data.startswith("yes:"):
            await q.answer("Cancelled")
            await q.edit_message_text("Cancelled.")
            return
        _, action, arg = data.split(":", 2)
        try:
            text = await self.act(action, arg)
            self.stats["confirmed"] += 1
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            self.stats["errors"] += 1
            text = f"{action} failed: {exc}"
        await q.answer(text[:190])
        await q.edit_message_text(text)

    async def act(self, action: str, arg: str) -> str:
        if action == "pause":
            await self._call("POST", "trader", "/config/pause")
            return "Paused: no new entries (exits still run)."
        if action == "resume":
            await self._call("POST", "risk", "/resume")
            await self._call("POST", "trader", "/config/resume")
            return "Resumed."
        if action == "close":
            c = await self._call("POST", "trader", f"/close/{arg}")
            return f"Closing cycle {arg}: {c.get('status', 'requested')}"
        raise ValueError(f"unknown action {action!r}")
