"""Notifications: bus events -> Apprise URLs (NOTIFY_URLS), off the hot path (docs/operations.md)."""

from roottrading.notify.events import EVENTS, Alert
from roottrading.notify.sender import Notifier

__all__ = ["EVENTS", "Alert", "Notifier"]
