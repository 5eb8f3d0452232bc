"""The Telegram bot: status and control from a phone, for allow-listed chats only (docs/operations.md)."""
