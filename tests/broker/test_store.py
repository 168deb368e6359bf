"""The durable store on its own: bad data directories, and no growth once messages are acked."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pika

from tui_queue.broker import BrokerConfig, BrokerThread
from tui_queue.broker.store import DB_NAME, DurableStore, StoreError


def _start_cli(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui_queue", "broker", "--port", "0", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_data_dir_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = _start_cli(blocker / "data")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert str(blocker / "data") in result.stderr
    assert result.stderr.startswith("tui-queue broker: cannot create data directory")


def test_a_corrupt_store_refuses_to_start_and_is_left_alone(tmp_path: Path) -> None:
    store = tmp_path / DB_NAME
    garbage = b"this is not an sqlite database, but it is somebody's data" * 100
    store.write_bytes(garbage)
    result = _start_cli(tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert str(store) in result.stderr
    assert "refusing to start over it" in result.stderr
    assert store.read_bytes() == garbage


def test_a_store_from_elsewhere_is_not_taken_for_ours(tmp_path: Path) -> None:
    store = tmp_path / DB_NAME
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema', '99')")
    try:
        DurableStore(tmp_path)
    except StoreError as error:
        assert "unknown schema version 99" in str(error)
    else:
        raise AssertionError("a store with an unknown schema was opened")


def _stored_rows(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / DB_NAME) as db:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])


def test_acked_messages_leave_the_store(tmp_path: Path) -> None:
    broker = BrokerThread(BrokerConfig(port=0, data_dir=tmp_path)).start()
    try:
        connection = pika.BlockingConnection(pika.URLParameters(broker.url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("kept", durable=True)
        persistent = pika.BasicProperties(delivery_mode=2)
        sizes = []
        for _round in range(3):
            for n in range(1000):
                channel.basic_publish("", "kept", f"task {n}".encode(), persistent)
            assert _stored_rows(tmp_path) == 1000
            for _ in range(1000):
                method, _props, _body = channel.basic_get("kept")
                channel.basic_ack(method.delivery_tag)
            # One more confirmed publish: the deletes before it are on disk once it is confirmed.
            channel.basic_publish("", "kept", b"marker", persistent)
            channel.basic_get("kept", auto_ack=True)
            channel.basic_publish("", "kept", b"marker", persistent)
            assert _stored_rows(tmp_path) == 1
            channel.basic_get("kept", auto_ack=True)
            sizes.append(DurableStore.disk_bytes_of(tmp_path))
        connection.close()
    finally:
        broker.stop()
    assert _stored_rows(tmp_path) == 0
    # Space is reused: three rounds of 1000 messages take no more room than one.
    assert sizes[-1] <= sizes[0] * 1.5, sizes
