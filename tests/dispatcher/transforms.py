"""Transforms referenced by dotted path ('tests.dispatcher.transforms:func') in the dispatcher tests."""

from __future__ import annotations

from roottrading import messages as m


def tag_odd_drop_seven(msg: m.Message) -> m.Message | None:
    """Drops seq 7, adds a note to odd ones: a filter and a payload rewrite."""
    if msg.payload.seq == 7:
        return None
    if msg.payload.seq % 2:
        return m.Message(
            id=msg.id, topic=msg.topic, key=msg.key, ts=msg.ts, payload=m.Ping(seq=msg.payload.seq, note="odd")
        )
    return msg


NOT_CALLABLE = 3
