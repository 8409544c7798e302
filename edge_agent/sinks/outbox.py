"""Durable outbox: every MQTT message is committed here before it is published.

An SQLite database in WAL mode with one table of pending messages keyed by
`seq`. `seq` is assigned inside the transaction that commits the messages and
the last value is kept in a `meta` row, so it keeps increasing across restarts
even after the queue drained empty, and a gap in `seq` always means a message
that was lost (dropped by the cap, or never committed).

Durability: `journal_mode=WAL` + `synchronous=NORMAL`. A committed transaction
is in the WAL file (in the OS page cache) when `commit` returns, so it survives
the agent being killed at any moment, `kill -9` included; only an OS crash or
power loss can lose the transactions since the last WAL sync (at checkpoints),
and WAL never corrupts the database for that. `synchronous=FULL` would add one
fsync per collection batch and per delete batch, which flash storage on site
hosts pays for dearly, to protect against power loss only.

The class is thread-confined: every method runs on one thread (the sink's
outbox executor), never on the event loop. The counters (`messages`, `bytes`,
`dropped`, `last_seq`, `durable`) are plain numbers any thread may read.

When the disk is full or the file is unusable, the outbox keeps working from a
bounded in-memory store (messages still get their `seq`, oldest dropped and
counted past the bound) and retries the disk every `retry_interval` seconds. A
corrupt file is moved aside (`<name>.corrupt-<unix time>`) and replaced by a
fresh one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MEMORY_MAX_BYTES = 64 << 20
# How far ahead of the last committed seq the in-memory fallback may assign
# numbers before it records a new floor on disk, so that a restart after a
# crash in fallback mode never reuses a seq that was already published.
SEQ_RESERVE = 1_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL);
"""
_CORRUPT = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


class Row(NamedTuple):
    seq: int
    topic: str
    payload: bytes


class Outbox:
    """An ordered, capped, crash-safe queue of (seq, topic, payload) rows."""

    def __init__(
        self,
        path: Path,
        max_bytes: int,
        *,
        memory_max_bytes: int = DEFAULT_MEMORY_MAX_BYTES,
        retry_interval: float = 30.0,
        max_pages: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`max_pages` caps the database file at that many pages (SQLite's
        `max_page_count`); it exists to let tests run out of space for real."""
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.memory_max_bytes = min(memory_max_bytes, max_bytes)
        self.retry_interval = retry_interval
        self._max_pages = max_pages
        self._clock = clock
        # Plain numbers, read by any thread (self-metrics).
        self.messages = 0
        self.bytes = 0
        self.dropped = 0  # since this process opened the outbox
        self.last_seq = 0
        self.durable = False
        self._db: sqlite3.Connection | None = None
        self._disk_messages = 0
        self._disk_bytes = 0
        self._mem: dict[int, tuple[str, bytes]] = {}
        self._mem_bytes = 0
        self._seq_floor = 0  # seq recorded on disk as "fallback used numbers up to here"
        self._retry_at = 0.0
        self._undeleted: set[int] = set()  # acknowledged but not yet deleted (delete failed)
        self._problem = ""  # last disk problem logged, to log each once
        self._dropping_since_log = 0
        self._drop_logged_at = 0.0
        self._render_failed = False

    # ---------------------------------------------------------------- open/close

    def open(self) -> None:
        """Open (or create) the database; never raises. Falls back to memory."""
        self._retry_at = 0.0
        self._try_disk()

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except sqlite3.Error as exc:
                log.warning("outbox %s: close failed: %s", self.path, exc)
        if self._mem:
            log.warning(
                "outbox %s: %d messages held in memory (disk unusable) are lost at exit", self.path, len(self._mem)
            )

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL journal mode (got {mode})")
            db.execute("PRAGMA synchronous=NORMAL")
            # One writer owns the file; a second agent on the same outbox would
            # interleave seqs, so it gets "database is locked" instead.
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_size_limit=67108864")
            if self._max_pages is not None:
                db.execute(f"PRAGMA max_page_count={int(self._max_pages)}")
            db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        except BaseException:
            db.close()
            raise
        return db

    def _load(self, db: sqlite3.Connection) -> None:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        count, size, max_seq = db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0), coalesce(max(seq), 0) FROM outbox"
        ).fetchone()
        stored = max(int(meta.get("last_seq", 0)), int(meta.get("seq_floor", 0)), int(max_seq))
        if "last_seq" not in meta:
            # A new file starts from the clock in microseconds, so seq still
            # increases if an old outbox was deleted or replaced.
            stored = max(stored, int(self._clock() * 1_000_000))
            log.info("outbox %s: created, seq starts after %d", self.path, stored)
        # Never go back below what this process already handed out.
        start = max(stored, self.last_seq)
        with db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)", (start,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('seq_floor', 0)")
        self.last_seq = start
        self._seq_floor = 0
        self._disk_messages = int(count)
        self._disk_bytes = int(size)
        if count:
            log.info(
                "outbox %s: %d messages (%d bytes) waiting from a previous run, last seq %d",
                self.path,
                count,
                size,
                start,
            )

    def _try_disk(self) -> bool:
        """(Re)open the database and move any in-memory messages into it."""
        for attempt in range(2):
            try:
                if self._db is None:
                    db = self._connect()
                    try:
                        self._load(db)
                    except BaseException:
                        db.close()
                        raise
                    self._db = db
                if self._mem or self._seq_floor:
                    # Also when memory already drained: the seq floor recorded
                    # on entering the fallback must be cleared, or the next
                    # start would skip a million numbers.
                    self._move_memory_to_disk()
            except sqlite3.Error as exc:
                if self._is_corrupt(exc) and attempt == 0:
                    self._quarantine(exc)
                    continue
                self._enter_memory(exc)
                return False
            except OSError as exc:
                self._enter_memory(exc)
                return False
            break
        if not self.durable and self._problem:
            log.warning("outbox %s: writing to disk again (%d messages queued)", self.path, self.messages)
        self.durable = True
        self._problem = ""
        self._sync_counts()
        return True

    @staticmethod
    def _is_corrupt(exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.DatabaseError) and getattr(exc, "sqlite_errorname", "") in _CORRUPT

    def _quarantine(self, exc: BaseException) -> None:
        """Move a corrupt database aside so a fresh one can take its place."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        lost = self._disk_messages
        self.dropped += lost
        self._disk_messages = self._disk_bytes = 0
        stamp = int(self._clock())
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                try:
                    os.replace(src, Path(str(target) + suffix))
                except OSError as move_exc:
                    log.error("outbox %s: cannot move corrupt file aside: %s", src, move_exc)
        log.error(
            "outbox %s is corrupt (%s); moved it to %s and started a new one; %s",
            self.path,
            exc,
            target,
            f"{lost} queued messages in it are lost" if lost else "messages queued in it cannot be recovered",
        )
        self._sync_counts()

    def _enter_memory(self, exc: BaseException) -> None:
        problem = f"{type(exc).__name__}: {exc}"
        if problem != self._problem:
            log.error(
                "outbox %s unusable (%s); queueing up to %d bytes in memory until the disk works again "
                "(retry every %gs)",
                self.path,
                problem,
                self.memory_max_bytes,
                self.retry_interval,
            )
            self._problem = problem
        self.durable = False
        self._retry_at = self._clock() + self.retry_interval
        if self._db is not None and self._is_corrupt(exc):
            self._quarantine(exc)

    # ------------------------------------------------------------------- append

    def append(self, items: Iterable[T], render: Callable[[T, int], tuple[str, bytes]]) -> int:
        """Render each item with the next seq and commit them all in one transaction.

        Returns how many messages were queued. Never raises: a disk problem
        sends the batch (and what follows) to the in-memory store.
        """
        if not self.durable and self._clock() >= self._retry_at:
            self._try_disk()
        if self.durable and self._db is not None:
            try:
                return self._append_disk(items, render)
            except sqlite3.Error as exc:
                self._enter_memory(exc)
        return self._append_memory(items, render)

    def _render_all(self, items: Iterable[T], render: Callable[[T, int], tuple[str, bytes]]) -> list[Row]:
        rows: list[Row] = []
        seq = self.last_seq
        for item in items:
            try:
                topic, payload = render(item, seq + 1)
            except Exception:
                # A bug in rendering one message must not stop the queue; it
                # consumes no seq, so it shows as neither a gap nor a drop.
                if not self._render_failed:
                    log.exception("outbox: cannot render a message; skipping it")
                    self._render_failed = True
                continue
            seq += 1
            rows.append(Row(seq, topic, payload))
        return rows

    def _append_disk(self, items: Iterable[T], render: Callable[[T, int], tuple[str, bytes]]) -> int:
        db = self._db
        assert db is not None
        rows = self._render_all(items, render)
        if not rows:
            return 0
        added = sum(len(r.payload) for r in rows)
        with _immediate(db):
            db.executemany("INSERT INTO outbox (seq, topic, payload) VALUES (?, ?, ?)", rows)
            db.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (rows[-1].seq,))
            dropped = dropped_bytes = 0
            if self._disk_bytes + added > self.max_bytes:
                dropped, dropped_bytes = self._drop_oldest_disk(db, self._disk_bytes + added - self.max_bytes)
        self.last_seq = rows[-1].seq
        self._disk_messages += len(rows) - dropped
        self._disk_bytes += added - dropped_bytes
        self._count_drops(dropped)
        self._sync_counts()
        return len(rows)

    def _drop_oldest_disk(self, db: sqlite3.Connection, excess: int) -> tuple[int, int]:
        freed = 0
        upto = 0
        scan = db.execute("SELECT seq, length(payload) FROM outbox ORDER BY seq")
        try:
            for seq, size in scan:
                freed += size
                upto = seq
                if freed >= excess:
                    break
        finally:
            # Finish the read statement before deleting from the same table.
            scan.close()
        cur = db.execute("DELETE FROM outbox WHERE seq <= ?", (upto,))
        return cur.rowcount, freed

    def _append_memory(self, items: Iterable[T], render: Callable[[T, int], tuple[str, bytes]]) -> int:
        rows = self._render_all(items, render)
        for row in rows:
            self._mem[row.seq] = (row.topic, row.payload)
            self._mem_bytes += len(row.payload)
        if rows:
            self.last_seq = rows[-1].seq
            self._reserve_seqs()
        dropped = 0
        while self._mem_bytes > self.memory_max_bytes and self._mem:
            seq = next(iter(self._mem))
            self._mem_bytes -= len(self._mem.pop(seq)[1])
            dropped += 1
        self._count_drops(dropped)
        self._sync_counts()
        return len(rows)

    def _reserve_seqs(self) -> None:
        """Record on disk, best effort, that seqs up to a floor may have been used.

        In fallback mode seqs are handed out without a commit; if the agent
        then dies, the next start must not hand the same numbers out again.
        """
        if self._db is None or self.last_seq + SEQ_RESERVE // 2 < self._seq_floor:
            return
        floor = self.last_seq + SEQ_RESERVE
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('seq_floor', ?)", (floor,))
            self._seq_floor = floor
        except sqlite3.Error as exc:
            log.debug("outbox %s: cannot record seq floor: %s", self.path, exc)

    def _move_memory_to_disk(self) -> None:
        db = self._db
        assert db is not None
        rows = [(seq, topic, payload) for seq, (topic, payload) in self._mem.items()]
        added = self._mem_bytes
        with _immediate(db):
            db.executemany("INSERT OR REPLACE INTO outbox (seq, topic, payload) VALUES (?, ?, ?)", rows)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last_seq', ?)", (self.last_seq,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('seq_floor', 0)")
            dropped = dropped_bytes = 0
            if self._disk_bytes + added > self.max_bytes:
                dropped, dropped_bytes = self._drop_oldest_disk(db, self._disk_bytes + added - self.max_bytes)
        self._seq_floor = 0
        self._disk_messages += len(rows) - dropped
        self._disk_bytes += added - dropped_bytes
        self._mem.clear()
        self._mem_bytes = 0
        self._count_drops(dropped)

    def _count_drops(self, dropped: int) -> None:
        if not dropped:
            return
        self.dropped += dropped
        self._dropping_since_log += dropped
        now = self._clock()
        if now - self._drop_logged_at >= 60.0:
            log.warning(
                "outbox %s: over its cap (%d bytes), dropped the %d oldest messages (%d dropped since start)",
                self.path,
                self.max_bytes if self.durable else self.memory_max_bytes,
                self._dropping_since_log,
                self.dropped,
            )
            self._drop_logged_at = now
            self._dropping_since_log = 0

    def _sync_counts(self) -> None:
        self.messages = self._disk_messages + len(self._mem)
        self.bytes = self._disk_bytes + self._mem_bytes

    # ----------------------------------------------------------- fetch / delete

    def fetch(self, after: int, limit: int) -> list[Row]:
        """Up to `limit` queued rows with seq > `after`, oldest first."""
        rows: list[Row] = []
        if self._db is not None:
            try:
                rows = [
                    Row(*r)
                    for r in self._db.execute(
                        "SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                        (after, limit + len(self._undeleted)),
                    )
                ]
            except sqlite3.Error as exc:
                if self._is_corrupt(exc):
                    self._quarantine(exc)
                    self._try_disk()
                else:
                    self._enter_memory(exc)
                rows = []
            if self._undeleted:
                rows = [r for r in rows if r.seq not in self._undeleted]
            del rows[limit:]
        if len(rows) < limit and self._mem:
            start = rows[-1].seq if rows else after
            for seq, (topic, payload) in self._mem.items():
                if seq > start:
                    rows.append(Row(seq, topic, payload))
                    if len(rows) >= limit:
                        break
        return rows

    def delete(self, seqs: Sequence[int]) -> None:
        """Remove acknowledged messages. Never raises; unknown seqs are ignored."""
        disk: list[tuple[int]] = []
        for seq in seqs:
            entry = self._mem.pop(seq, None)
            if entry is not None:
                self._mem_bytes -= len(entry[1])
            else:
                disk.append((seq,))
        if self._undeleted:
            disk.extend((s,) for s in self._undeleted)
        if disk and self._db is not None:
            db = self._db
            try:
                freed = 0
                removed = 0
                with _immediate(db):
                    for (seq,) in disk:
                        for (size,) in db.execute("DELETE FROM outbox WHERE seq = ? RETURNING length(payload)", (seq,)):
                            freed += size
                            removed += 1
                self._undeleted.clear()
                self._disk_messages -= removed
                self._disk_bytes -= freed
            except sqlite3.Error as exc:
                # Remember them so they are not published again meanwhile.
                self._undeleted.update(s for (s,) in disk)
                if self._is_corrupt(exc):
                    self._quarantine(exc)
                    self._undeleted.clear()
                    self._try_disk()
                else:
                    self._enter_memory(exc)
        self._sync_counts()


@contextlib.contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: committed when the block ends, rolled back if anything in it fails."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise
