"""Dispatcher engine and service: forwarding, transforms, stats over HTTP, spill log behaviour."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from roottrading import messages as m
from roottrading.bus.memory import MemoryBus
from roottrading.config import load_settings
from roottrading.runtime import Host, Wiring
from roottrading.runtime.http import build_app
from roottrading.services.dispatcher.forwarder import Dispatcher
from roottrading.services.dispatcher.routes import load_routes
from roottrading.services.dispatcher.spill import SpillLog
from tests.bus.test_contract import Recorder
from tests.dispatcher.conftest import FAST_RETRY

ROUTES = """
targets:
  other: {url: "memory://"}
topics: ["test.a", "test.b", "test.x"]
routes:
  - {name: plain, match: "test.a", target: other}
  - {name: renamed, match: "test.b", target: other, transform: "rename:test.renamed"}
  - {name: custom, match: "test.x", target: other, target_topic: "test.custom",
     transform: "tests.dispatcher.transforms:tag_odd_drop_seven"}
"""


async def test_routes_forward_with_ids_keys_and_transforms(tmp_path: Path) -> None:
    source, target = MemoryBus(retry=FAST_RETRY), MemoryBus(retry=FAST_RETRY)
    await source.start()
    await target.start()
    d = Dispatcher(load_routes(ROUTES), data_dir=tmp_path, symbols=[], source=source, targets={"other": target})
    recs = {t: Recorder() for t in ("test.a", "test.renamed", "test.custom")}
    for t, r in recs.items():
        await target.subscribe(t, "check", r)
    await d.start(subscribe=True)
    ids = [await source.publish("test.a", m.Ping(seq=i), key=f"K{i % 2}", ts=1000 + i) for i in range(5)]
    await source.publish("test.b", m.Ping(seq=1), key="K", msg_id="b1")
    for i in range(10):
        await source.publish("test.x", m.Ping(seq=i), key="K")
    assert await source.drain(5) and await target.drain(5)
    got = recs["test.a"].msgs
    assert [x.id for x in got] == ids and [x.ts for x in got] == [1000 + i for i in range(5)]
    assert [x.key for x in got] == ["K0", "K1"] * 2 + ["K0"]
    assert [(x.id, x.topic) for x in recs["test.renamed"].msgs] == [("b1", "test.renamed")]
    custom = recs["test.custom"].msgs
    assert [x.payload.seq for x in custom] == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert [x.payload.note for x in custom][:2] == ["", "odd"]
    stats = d.stats()
    assert stats["routes"]["custom"]["dropped"] == 1 and stats["routes"]["custom"]["forwarded"] == 9
    assert stats["totals"]["forwarded"] == 15 and stats["totals"]["spilled"] == 0
    await d.stop()
    await source.close()
    await target.close()


async def test_a_transform_that_raises_is_dead_lettered_on_the_source(tmp_path: Path) -> None:
    source, target = MemoryBus(retry=FAST_RETRY), MemoryBus(retry=FAST_RETRY)
    cfg = load_routes(
        {
            "targets": {"t": {"url": "memory://"}},
            "routes": [{"name": "bad", "match": "test.y", "target": "t", "target_topic": "signals"}],
        }
    )  # Ping is no Signal
    d = Dispatcher(cfg, data_dir=tmp_path, symbols=[], source=source, targets={"t": target})
    dead = Recorder()
    await source.subscribe(m.dead_letter_topic("test.y"), "dl", dead)
    await d.start(subscribe=True)
    await source.publish("test.y", m.Ping(seq=1))
    assert await source.drain(5)
    [dl] = dead.msgs
    assert "carries Signal, got Ping" in dl.payload.error and dl.payload.group == "dispatcher-bad"
    await d.stop()


async def test_service_in_a_host_serves_stats_and_health(tmp_path: Path) -> None:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", api_token="t", data_dir=tmp_path, symbols="BTCUSDT,ETHUSDT"
    )
    target = MemoryBus()
    rec = Recorder()
    await target.subscribe(m.candles_topic("ETHUSDT"), "check", rec)
    host = Host(
        settings,
        ["dispatcher"],
        wiring=Wiring(
            dispatcher_routes={
                "targets": {"t": {"url": "memory://"}},
                "routes": [{"name": "candles", "match": "market.candles.*", "target": "t"}],
            },
            dispatcher_targets={"t": target},
        ),
    )
    await host.start()
    try:
        from roottrading.domain import Candle

        c = Candle(
            symbol="ETHUSDT", interval="1m", open_time=0, close_time=59_999, open=1, high=2, low=1, close=2, volume=1
        )
        await host.bus.publish(m.candles_topic("ETHUSDT"), c, key="ETHUSDT")
        assert await host.bus.drain(5) and await target.drain(5)
        assert [x.payload for x in rec.msgs] == [c]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)), base_url="http://t") as cl:
            stats = (await cl.get("/api/dispatcher/stats")).json()
            health = (await cl.get("/api/dispatcher/health")).json()
        route = stats["routes"]["candles"]
        assert route["topics"] == ["market.candles.BTCUSDT", "market.candles.ETHUSDT"]
        assert (route["forwarded"], route["spilled"], route["failed"], route["mode"]) == (1, 0, 0, "direct")
        assert route["lag_ms"] is not None and route["lag_ms"] >= 0
        assert health == {"status": "ok", "routes": 1, "config": "wiring", "targets_down": [], "pending": {}}
    finally:
        await host.stop()


async def test_spill_log_keeps_order_across_memory_limit_reopen_and_torn_line(tmp_path: Path) -> None:
    log = SpillLog(tmp_path, "r", memory_max=3)
    for i in range(10):
        await log.append("test.a", "K", i, m.encode("test.a", m.Ping(seq=i), msg_id=f"id{i}"))
    assert (len(log.memory), log.disk_only, log.pending) == (3, 7, 10)
    for _ in range(4):  # forward 4, then "crash" (close without forwarding the rest)
        e = log.peek()
        assert e is not None
        await log.done(e)
    await log.close()
    with open(tmp_path / "r.log", "ab") as f:
        f.write(b'{"s":11,"t":"test.a"')  # a write torn by a crash: its source was never acked
    again = SpillLog(tmp_path, "r", memory_max=3)
    order = []
    while (e := again.peek()) is not None:
        order.append(m.decode(e.r).payload.seq)
        await again.done(e)
    assert order == list(range(4, 10))
    assert (tmp_path / "r.log").stat().st_size == 0  # compacted once everything was forwarded
    await again.append("test.a", "K", 0, m.encode("test.a", m.Ping(seq=99)))
    await again.close()
    third = SpillLog(tmp_path, "r")
    e = third.peek()
    assert e is not None and e.s == 11 and m.decode(e.r).payload.seq == 99  # seq kept counting after compaction
    await third.close()


async def test_target_down_spills_to_disk_then_forwards_in_order_after_restart(
    tmp_path: Path, private_nats: object
) -> None:
    """Disk spill across a dispatcher restart: the target is down for the first dispatcher, which spills and
    acks the source; a second dispatcher object (same data dir) forwards everything once the target is back."""
    from roottrading.bus.nats import NatsBus
    from tests.dispatcher.conftest import PrivateServer, make_nats_bus

    srv: PrivateServer = private_nats  # type: ignore[assignment]
    srv.kill()
    source = MemoryBus(retry=FAST_RETRY)
    await source.start()
    cfg = load_routes(
        {
            "targets": {"durable": {"url": srv.url, "prefix": "spill", "options": {"publish_timeout_s": 1.0}}},
            "topics": ["test.s"],
            "memory_max": 5,
            "forward_timeout_s": 0.3,
            "routes": [{"name": "s", "match": "test.s", "target": "durable"}],
        }
    )
    d1 = Dispatcher(cfg, data_dir=tmp_path, symbols=[], source=source)
    await d1.start(subscribe=True)
    n = 40
    ids = [await source.publish("test.s", m.Ping(seq=i), key=f"K{i % 4}") for i in range(n)]
    assert await source.drain(15)  # every message acked at the source: it is on disk
    st = d1.stats()["routes"]["s"]
    assert st["spilled"] == n and st["pending"] == n and st["forwarded"] == 0 and st["target_up"] is False
    assert st["on_disk_only"] == n - 5 and st["last_error"]
    await d1.stop()
    assert (tmp_path / "dispatcher" / "s.log").read_bytes().count(b"\n") == n

    await srv.astart()
    d2 = Dispatcher(cfg, data_dir=tmp_path, symbols=[], source=source)
    await d2.start(subscribe=True)
    assert await d2.wait_idle(20)
    assert d2.stats()["routes"]["s"]["forwarded_from_spill"] == n
    await d2.stop()
    check: NatsBus = make_nats_bus(srv.url, "spill")
    await check.start()
    rec = Recorder()
    await check.subscribe("test.s", "check", rec)
    assert await check.drain(10)
    assert sorted(x.id for x in rec.msgs) == sorted(ids) and len(rec.msgs) == n
    for k in range(4):
        assert [x.payload.seq for x in rec.msgs if x.key == f"K{k}"] == list(range(k, n, 4))
    await check.close()
    await source.close()
    await asyncio.sleep(0)
