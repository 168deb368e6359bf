"""The durable store: durable queues, exchanges, bindings and persistent messages in SQLite (WAL).

The event loop never waits on the disk. It hands changes to one writer thread, which applies
everything that piled up since its last commit in one transaction (group commit: many publishers
share an fsync) and then tells the loop how far the disk has got, which releases publisher
confirms. A message acked before the writer reached it is never written at all.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tui_queue.broker.codec import Reader, decode_str, encode_table
from tui_queue.broker.deadletter import header_routes
from tui_queue.broker.exchanges import Binding, Exchange
from tui_queue.broker.expiry import loop_time
from tui_queue.broker.message import (
    Entry,
    Message,
    Undecodable,
    expiration_problem,
    headers_of,
    inspect_properties,
)
from tui_queue.broker.queues import Queue
from tui_queue.broker.vhost import VirtualHost

DB_NAME = "tui-queue.sqlite3"
# 2: messages.expires_at (the wall-clock deadline of a message with a TTL).
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS exchanges (
    name TEXT PRIMARY KEY, type TEXT NOT NULL, auto_delete INTEGER NOT NULL,
    internal INTEGER NOT NULL, arguments BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY, type TEXT NOT NULL, auto_delete INTEGER NOT NULL,
    arguments BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS bindings (
    source TEXT NOT NULL, destination TEXT NOT NULL, destination_kind TEXT NOT NULL,
    routing_key TEXT NOT NULL, arguments BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY, queue TEXT NOT NULL, seq INTEGER NOT NULL,
    exchange TEXT NOT NULL, routing_key TEXT NOT NULL, properties BLOB NOT NULL,
    body BLOB NOT NULL, delivered INTEGER NOT NULL DEFAULT 0,
    delivery_count INTEGER NOT NULL DEFAULT 0, expires_at REAL);
"""


class StoreError(Exception):
    """The data directory cannot be used; the message names the path and why."""


@dataclass
class RecoveryReport:
    queues: int = 0
    exchanges: int = 0
    bindings: int = 0
    messages: int = 0
    clean_shutdown: bool = True


def _restore_attributes(message: Message) -> None:
    """What a publish worked out from the properties, worked out again: the expiration, the
    priority, and the CC routing keys (BCC was taken out when it was published)."""
    try:
        info = inspect_properties(message.properties)
    except Undecodable:
        return
    if info.expiration is not None and expiration_problem(info.expiration) is None:
        message.ttl = int(info.expiration)
    message.priority = info.priority or 0
    if info.headers is not None:
        routes = header_routes(headers_of(message.properties))
        message.extra_keys = tuple(decode_str(route) for route in routes)


def _decode_table(blob: bytes) -> dict:  # type: ignore[type-arg]
    return Reader(len(blob).to_bytes(4, "big") + blob).table()


def _encode_table(table: dict) -> bytes:  # type: ignore[type-arg]
    return encode_table(table)[4:]


# An op is (sql, params), or ("insert", (store_id,)) for a message row looked up when written.
Op = tuple[str, tuple[object, ...]]
INSERT_MESSAGE = (
    "INSERT INTO messages (id, queue, seq, exchange, routing_key, properties, body, delivered, "
    "delivery_count, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
)


class DurableStore:
    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        self.db = self._open()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        # Changes of the current loop turn, kept on the loop thread until hand_over().
        self._local_ops: list[Op] = []
        self._local_inserts: dict[int, tuple[object, ...]] = {}
        self._hand_over_scheduled = False
        self._handed = 0  # batches handed over so far
        self._synced = 0  # the last batch the writer committed
        # Handed over, not yet taken by the writer: (number, ops, message rows by store id).
        self._batches: list[tuple[int, list[Op], dict[int, tuple[object, ...]]]] = []
        self._waiters: list[tuple[int, Callable[[], None]]] = []
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._next_id = 1
        self.error: BaseException | None = None

    # ------------------------------------------------------------------ opening

    def _open(self) -> sqlite3.Connection:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create data directory {self.data_dir}: {exc.strerror}"
            ) from exc
        if not os.access(self.data_dir, os.W_OK | os.X_OK):
            raise StoreError(f"data directory {self.data_dir} is not writable")
        existed = self.path.exists()
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            if existed:
                check = db.execute("PRAGMA quick_check").fetchone()
                if check is None or check[0] != "ok":
                    raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            db.executescript(SCHEMA)
            version = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if version is None:
                if existed and db.execute("SELECT count(*) FROM queues").fetchone()[0]:
                    raise sqlite3.DatabaseError("store has data but no schema version")
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(version[0]) == 1:
                # Version 1 had no message deadlines: nothing stored before could have one.
                db.execute("ALTER TABLE messages ADD COLUMN expires_at REAL")
                db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION),))
            elif int(version[0]) != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"unknown schema version {version[0]}")
        except sqlite3.Error as exc:
            raise StoreError(
                f"durable store {self.path} is unreadable or corrupt ({exc}); refusing to start "
                "over it. Move it away to start empty."
            ) from exc
        except OSError as exc:
            raise StoreError(f"cannot open durable store {self.path}: {exc}") from exc
        return db

    # ------------------------------------------------------------------ recovery

    def recover(self, vhost: VirtualHost) -> RecoveryReport:
        """Load what was stored into an empty virtual host, then start listening to it."""
        db = self.db
        report = RecoveryReport()
        clean = db.execute("SELECT value FROM meta WHERE key='clean'").fetchone()
        report.clean_shutdown = clean is None or clean[0] == "1"
        for name, kind, auto_delete, internal, arguments in db.execute(
            "SELECT name, type, auto_delete, internal, arguments FROM exchanges"
        ):
            vhost.exchanges[name] = Exchange(
                name, kind, True, bool(auto_delete), bool(internal), _decode_table(arguments)
            )
            report.exchanges += 1
        for name, kind, auto_delete, arguments in db.execute(
            "SELECT name, type, auto_delete, arguments FROM queues"
        ):
            queue = vhost.restore_queue(name, kind, bool(auto_delete), _decode_table(arguments))
            queue.store = self
            report.queues += 1
        for source, destination, destination_kind, routing_key, arguments in db.execute(
            "SELECT source, destination, destination_kind, routing_key, arguments FROM bindings"
        ):
            exchange = vhost.exchanges.get(source)
            table = _decode_table(arguments)
            if exchange is not None:
                exchange.add_binding(
                    Binding(
                        source,
                        destination,
                        destination_kind,
                        routing_key,
                        Binding.arguments_key(table),
                    ),
                    table,
                )
                report.bindings += 1
        max_id = 0
        rows = db.execute(
            "SELECT id, queue, seq, exchange, routing_key, properties, body, delivered, "
            "delivery_count, expires_at FROM messages ORDER BY queue, seq"
        )
        returned: list[tuple[int, int]] = []
        # Deadlines are stored on the wall clock and kept on the event loop's clock.
        wall_to_loop = loop_time() - time.time()
        for row in rows:
            (sid, queue_name, seq, exchange, routing_key, props, body, delivered, count) = row[:9]
            expires_at: float | None = row[9]
            max_id = max(max_id, sid)
            queue = vhost.queues.get(queue_name)
            if queue is None:
                continue
            message = Message(exchange, routing_key, bytes(props), bytes(body), True)
            _restore_attributes(message)
            entry = Entry(seq, message)
            entry.store_id = sid
            if expires_at is not None:
                entry.expires_at = expires_at + wall_to_loop
            if queue.queue_type == "quorum":
                if delivered:
                    # Checked out when the broker went down: the delivery counts as returned.
                    count += 1
                    returned.append((count, sid))
                entry.delivery_count = count
                entry.redelivered = count > 0
            else:
                # RabbitMQ marks every recovered message redelivered after an unclean stop.
                entry.redelivered = bool(delivered) or not report.clean_shutdown
            queue.restore(entry)
            report.messages += 1
        self._next_id = max_id + 1
        with db:
            db.execute("BEGIN")
            db.executemany("UPDATE messages SET delivered=0, delivery_count=? WHERE id=?", returned)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('clean', '0')")
        return report

    # ------------------------------------------------------------------ writer thread

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._writer, name="tui-queue-store", daemon=True)
        self._thread.start()
        self.hand_over()

    def _submit(self, op: Op) -> None:
        self._local_ops.append(op)
        self._schedule_hand_over()

    def _schedule_hand_over(self) -> None:
        if not self._hand_over_scheduled and self._loop is not None:
            self._hand_over_scheduled = True
            self._loop.call_soon(self.hand_over)

    def hand_over(self) -> None:
        """Give the writer what this loop turn changed: one lock and one wake-up per turn."""
        self._hand_over_scheduled = False
        if not self._local_ops:
            return
        self._handed += 1
        batch = (self._handed, self._local_ops, self._local_inserts)
        self._local_ops, self._local_inserts = [], {}
        with self._lock:
            self._batches.append(batch)
            self._wake.notify()

    def _writer(self) -> None:
        db = self.db
        while True:
            with self._lock:
                while not self._batches and not self._stopping:
                    self._wake.wait()
                if not self._batches:
                    return
                batches, self._batches = self._batches, []
            try:
                db.execute("BEGIN")
                for _number, ops, inserts in batches:
                    self._apply(db, ops, inserts)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                self.error = exc
                return
            loop = self._loop
            if loop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(self._synced_upto, batches[-1][0])
                except RuntimeError:
                    return

    def _apply(
        self, db: sqlite3.Connection, ops: list[Op], inserts: dict[int, tuple[object, ...]]
    ) -> None:
        # Runs of the same statement go to executemany: one call for a burst of publishes.
        run_sql = ""
        run: list[tuple[object, ...]] = []
        for sql, params in ops:
            if sql == "insert":
                with self._lock:
                    row = inserts.pop(params[0], None)  # type: ignore[arg-type]
                if row is None:
                    continue  # acked before we got to it
                sql, params = INSERT_MESSAGE, row
            if sql != run_sql:
                if run:
                    db.executemany(run_sql, run)
                run_sql, run = sql, []
            run.append(params)
        if run:
            db.executemany(run_sql, run)

    def _synced_upto(self, batch: int) -> None:
        self._synced = batch
        ready = [cb for upto, cb in self._waiters if upto <= batch]
        self._waiters = [(upto, cb) for upto, cb in self._waiters if upto > batch]
        for callback in ready:
            callback()

    def after_sync(self, callback: Callable[[], None]) -> None:
        """Call back (on the loop) once everything changed so far is committed to disk."""
        target = self._handed + (1 if self._local_ops else 0)
        if target <= self._synced:
            callback()
        else:
            self._waiters.append((target, callback))

    def close(self, clean: bool = True) -> None:
        """Write what was handed over, mark a clean stop, and join the writer.

        Call hand_over() on the loop first; close() may then run in another thread.
        """
        if self._thread is not None:
            with self._lock:
                self._stopping = True
                self._wake.notify()
            self._thread.join()
            self._thread = None
        if clean and self.error is None:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('clean', '1')")
        self.db.close()

    # ------------------------------------------------------------------ changes from the loop

    def queue_created(self, queue: Queue) -> None:
        if not queue.durable:
            return
        queue.store = self
        self._submit(
            (
                "INSERT OR REPLACE INTO queues VALUES (?,?,?,?)",
                (
                    queue.name,
                    queue.queue_type,
                    int(queue.auto_delete),
                    _encode_table(queue.arguments),
                ),
            )
        )

    def queue_deleted(self, queue: Queue) -> None:
        if not queue.durable:
            return
        self._submit(("DELETE FROM messages WHERE queue=?", (queue.name,)))
        self._submit(("DELETE FROM queues WHERE name=?", (queue.name,)))

    def exchange_created(self, exchange: Exchange) -> None:
        if not exchange.durable:
            return
        self._submit(
            (
                "INSERT OR REPLACE INTO exchanges VALUES (?,?,?,?,?)",
                (
                    exchange.name,
                    exchange.kind,
                    int(exchange.auto_delete),
                    int(exchange.internal),
                    _encode_table(exchange.arguments),
                ),
            )
        )

    def exchange_deleted(self, exchange: Exchange) -> None:
        if exchange.durable:
            self._submit(("DELETE FROM exchanges WHERE name=?", (exchange.name,)))

    def binding_changed(
        self, vhost: VirtualHost, binding: Binding, arguments: dict, added: bool
    ) -> None:  # type: ignore[type-arg]
        if not self._binding_is_durable(vhost, binding):
            return
        key = (binding.source, binding.destination, binding.destination_kind, binding.routing_key)
        blob = _encode_table(arguments)
        if added:
            self._submit(("INSERT INTO bindings VALUES (?,?,?,?,?)", (*key, blob)))
        else:
            self._submit(
                (
                    "DELETE FROM bindings WHERE source=? AND destination=? AND "
                    "destination_kind=? AND routing_key=? AND arguments=?",
                    (*key, blob),
                )
            )

    @staticmethod
    def _binding_is_durable(vhost: VirtualHost, binding: Binding) -> bool:
        source = vhost.exchanges.get(binding.source)
        if binding.destination_kind == "queue":
            destination_durable = (
                queue := vhost.queues.get(binding.destination)
            ) is not None and queue.durable
        else:
            destination_durable = (
                target := vhost.exchanges.get(binding.destination)
            ) is not None and target.durable
        # A binding from a deleted exchange or to a deleted queue is removed by their own rows.
        return destination_durable and (source is None or source.durable)

    def enqueued(self, queue: Queue, entry: Entry) -> bool:
        """Store a message that must survive; False if it is not one (transient, classic)."""
        message = entry.message
        if not message.persistent and queue.queue_type != "quorum":
            return False
        sid = self._next_id
        self._next_id = sid + 1
        entry.store_id = sid
        expires_at = entry.expires_at
        row = (
            sid,
            queue.name,
            entry.seq,
            message.exchange,
            message.routing_key,
            message.properties,
            message.body,
            0,
            entry.delivery_count,
            None if expires_at is None else expires_at - loop_time() + time.time(),
        )
        self._local_inserts[sid] = row
        self._local_ops.append(("insert", (sid,)))
        self._schedule_hand_over()
        return True

    def released(self, entry: Entry) -> None:
        sid = entry.store_id
        if sid is None:
            return
        entry.store_id = None
        # A message consumed before the writer reached it is never written at all.
        if self._local_inserts.pop(sid, None) is not None:
            return
        with self._lock:
            for _number, _ops, inserts in self._batches:
                if inserts.pop(sid, None) is not None:
                    return
        self._submit(("DELETE FROM messages WHERE id=?", (sid,)))

    def delivered(self, entry: Entry) -> None:
        sid = entry.store_id
        if sid is not None:
            self._submit(("UPDATE messages SET delivered=1 WHERE id=?", (sid,)))

    def returned(self, entry: Entry) -> None:
        sid = entry.store_id
        if sid is not None:
            self._submit(
                (
                    "UPDATE messages SET delivered=0, delivery_count=?, seq=? WHERE id=?",
                    (entry.delivery_count, entry.seq, sid),
                )
            )

    def disk_bytes(self) -> int:
        return self.disk_bytes_of(self.data_dir)

    @staticmethod
    def disk_bytes_of(data_dir: Path) -> int:
        """The store's size on disk, its write-ahead log included."""
        return sum(p.stat().st_size for p in data_dir.glob(DB_NAME + "*") if p.is_file())
