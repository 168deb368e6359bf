"""The durable store and the queue features that drop or move messages: expiry, length limits,
dead-lettering. Dropped messages leave the store; dead-lettered copies that land in durable
queues are written; message deadlines survive a restart."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pika

from tui_queue.broker import BrokerConfig, BrokerThread
from tui_queue.broker.store import DB_NAME, DurableStore

PERSISTENT = pika.BasicProperties(delivery_mode=2)


@contextmanager
def _broker(data_dir: Path) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    broker = BrokerThread(BrokerConfig(port=0, data_dir=data_dir)).start()
    try:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.confirm_delivery()
        yield channel
        connection.close()
    finally:
        broker.stop()


def _rows(data_dir: Path) -> list[tuple[str, bytes]]:
    with sqlite3.connect(data_dir / DB_NAME) as db:
        return [
            (q, bytes(b)) for q, b in db.execute("SELECT queue, body FROM messages ORDER BY id")
        ]


def _wait_for(condition: object, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)  # the store's writer thread gives no event to wait on
    return bool(condition())  # type: ignore[operator]


def test_expired_and_dropped_messages_leave_the_store(tmp_path: Path) -> None:
    with _broker(tmp_path) as channel:
        channel.queue_declare("ttl", durable=True, arguments={"x-message-ttl": 100})
        channel.queue_declare("short", durable=True, arguments={"x-max-length": 1})
        for body in (b"a", b"b", b"c"):
            channel.basic_publish("", "ttl", body, PERSISTENT)
            channel.basic_publish("", "short", body, PERSISTENT)
        assert _wait_for(lambda: _rows(tmp_path) == [("short", b"c")])


def test_dead_lettered_copies_are_stored_and_survive_a_restart(tmp_path: Path) -> None:
    with _broker(tmp_path) as channel:
        channel.queue_declare("dlq", durable=True)
        arguments = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"}
        channel.queue_declare("work", durable=True, arguments=arguments)
        channel.basic_publish("", "work", b"doomed", PERSISTENT)
        method, _props, _body = channel.basic_get("work")
        channel.basic_reject(method.delivery_tag, requeue=False)
        assert _wait_for(lambda: _rows(tmp_path) == [("dlq", b"doomed")])
    with _broker(tmp_path) as channel:
        method, properties, body = channel.basic_get("dlq", auto_ack=True)
        assert body == b"doomed"
        assert properties.headers["x-first-death-reason"] == "rejected"
        assert channel.basic_get("work")[0] is None


def test_a_message_deadline_survives_a_restart(tmp_path: Path) -> None:
    """A persistent message with a TTL expires at its first deadline, restart or not."""
    with _broker(tmp_path) as channel:
        channel.queue_declare("ttl", durable=True)
        expiring = pika.BasicProperties(delivery_mode=2, expiration="1500")
        channel.basic_publish("", "ttl", b"expiring", expiring)
        channel.basic_publish("", "ttl", b"kept", PERSISTENT)
        published = time.monotonic()
    with _broker(tmp_path) as channel:
        assert channel.queue_declare("ttl", passive=True).method.message_count == 2
        time.sleep(max(0.0, published + 1.7 - time.monotonic()))  # past the first deadline
        channel.connection.process_data_events(time_limit=0)
        assert channel.queue_declare("ttl", passive=True).method.message_count == 1
        assert channel.basic_get("ttl", auto_ack=True)[2] == b"kept"


def test_a_version_1_store_gains_message_deadlines(tmp_path: Path) -> None:
    store = DurableStore(tmp_path)
    store.close()
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("ALTER TABLE messages DROP COLUMN expires_at")
        db.execute("UPDATE meta SET value='1' WHERE key='schema'")
    with _broker(tmp_path) as channel:
        channel.queue_declare("q", durable=True)
        channel.basic_publish("", "q", b"x", pika.BasicProperties(delivery_mode=2, expiration="9"))
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("2",)
