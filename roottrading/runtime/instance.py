"""This process's instance name: the name of its per-instance (broadcast) consumer groups.

Why stable: a broadcast group (bus/redis.py `from_latest`) is created once per name; an instance restarted under
the same name continues its group where it stopped (it receives the control events published while it was
down, applied idempotently), and no new group is left behind per restart. The supervisor sets
ROOTTRADING_INSTANCE to the child's label (trader#1); a plain `roottrading service trader --port P` is named
after its host and port, which are unique among live processes of one machine. In containers, set
ROOTTRADING_INSTANCE to a stable name (a StatefulSet's pod name), or each new pod creates its own group.
"""

from __future__ import annotations

import os
import re
import socket

ENV = "ROOTTRADING_INSTANCE"


def instance_name(port: int | None = None) -> str:
    raw = os.environ.get(ENV) or f"{socket.gethostname()}-{port if port else os.getpid()}"
    return re.sub(r"[^A-Za-z0-9_.#-]", "_", raw)[:80]


def broadcast_group(service: str, instance: str) -> str:
    """The group through which every instance of `service` receives every message of a topic."""
    return f"{service}@{instance}"
