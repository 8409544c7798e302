"""The durable outbox on its own: order, seq across reopen, cap accounting, corrupt file, full disk."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.sinks.outbox import Outbox


def render(item: int, seq: int) -> tuple[str, bytes]:
    return f"t/{item}", b'{"seq":%d,"item":%d,"pad":"%s"}' % (seq, item, b"x" * 40)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def drain_all(box: Outbox) -> list[int]:
    seqs: list[int] = []
    while rows := box.fetch(seqs[-1] if seqs else 0, 7):
        seqs.extend(r.seq for r in rows)
    return seqs


def test_order_and_delete_after_ack(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "q.db", 1 << 20)
    box.open()
    assert box.durable
    box.append(range(10), render)
    box.append(range(10, 25), render)
    rows = box.fetch(0, 100)
    seqs = [r.seq for r in rows]
    assert seqs == list(range(seqs[0], seqs[0] + 25)), "one seq per message, in order"
    assert [r.topic for r in rows] == [f"t/{i}" for i in range(25)]
    assert all(r.payload.startswith(b'{"seq":%d,' % r.seq) for r in rows), "payload carries its own seq"
    assert box.messages == 25
    assert box.bytes == sum(len(r.payload) for r in rows)
    # Out-of-order acknowledgements remove exactly those rows.
    box.delete([seqs[3], seqs[0], seqs[24]])
    assert [r.seq for r in box.fetch(0, 100)] == [s for s in seqs if s not in (seqs[0], seqs[3], seqs[24])]
    assert box.messages == 22
    box.delete(seqs)
    assert box.messages == 0
    assert box.bytes == 0
    box.close()


def test_seq_keeps_increasing_across_reopen_even_when_drained(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    box = Outbox(path, 1 << 20)
    box.open()
    box.append(range(5), render)
    first = box.fetch(0, 10)
    box.delete([r.seq for r in first])
    last = box.last_seq
    box.close()

    again = Outbox(path, 1 << 20)
    again.open()
    assert again.messages == 0
    assert again.last_seq == last
    again.append(range(3), render)
    assert [r.seq for r in again.fetch(0, 10)] == [last + 1, last + 2, last + 3]
    again.close()


def test_new_outbox_starts_from_the_clock(tmp_path: Path) -> None:
    clock = Clock()
    box = Outbox(tmp_path / "q.db", 1 << 20, clock=clock)
    box.open()
    assert box.last_seq == int(clock.now * 1_000_000)
    box.close()


def test_backlog_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    box = Outbox(path, 1 << 20)
    box.open()
    box.append(range(40), render)
    expected = [r.seq for r in box.fetch(0, 100)]
    box.close()
    again = Outbox(path, 1 << 20)
    again.open()
    assert again.messages == 40
    assert drain_all(again) == expected
    again.close()


def test_cap_drops_oldest_and_counts_exactly(tmp_path: Path) -> None:
    size = len(render(0, 10**15)[1])
    cap = size * 10 + size // 2  # room for 10 messages
    box = Outbox(tmp_path / "q.db", cap, clock=Clock())
    box.open()
    first = box.last_seq + 1
    for start in range(0, 95, 5):
        box.append(range(start, start + 5), render)
    left = drain_all(box)
    sent = 95
    assert box.bytes <= cap
    assert left == list(range(first + sent - len(left), first + sent)), "the newest survive, contiguous"
    assert box.dropped == sent - len(left)
    assert box.messages == len(left)
    print(f"sent={sent} received={len(left)} duplicates=0 dropped={box.dropped}")
    box.close()


def test_kill_9_during_writes_keeps_every_committed_message(tmp_path: Path) -> None:
    """A writer process is killed mid-stream; every batch it reported committed is there, in order."""
    path = tmp_path / "q.db"
    script = textwrap.dedent(
        f"""
        import sys
        from edge_agent.sinks.outbox import Outbox
        box = Outbox({str(path)!r}, 1 << 30)
        box.open()
        i = 0
        while True:
            box.append(range(i, i + 50), lambda item, seq: ("t", b"%d" % seq))
            i += 50
            sys.stdout.write("%d\\n" % box.last_seq)
            sys.stdout.flush()
        """
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    committed = 0
    for _ in range(40):
        committed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    box = Outbox(path, 1 << 30)
    box.open()
    seqs = drain_all(box)
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), "no gap"
    assert seqs[-1] >= committed, "everything reported committed survived"
    assert box.last_seq == seqs[-1]
    box.close()


def test_corrupt_file_is_moved_aside_and_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "q.db"
    path.write_bytes(b"this is not an sqlite database" * 200)
    box = Outbox(path, 1 << 20)
    with caplog.at_level(logging.ERROR):
        box.open()
    assert box.durable
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "corrupt" in errors[0]
    assert str(path) in errors[0]
    aside = list(tmp_path.glob("q.db.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"this is not")
    box.append(range(3), render)
    assert box.messages == 3
    box.close()


def test_corruption_found_while_running(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Pages overwritten under a running outbox: reported, replaced, and the seq does not go back."""
    path = tmp_path / "q.db"
    box = Outbox(path, 1 << 30)
    box.open()
    for i in range(0, 4000, 200):
        box.append(range(i, i + 200), render)
    box.close()
    before = box.last_seq
    with path.open("r+b") as f:  # smash everything after the first pages
        f.seek(8192)
        f.write(b"\xff" * (path.stat().st_size - 8192))
    box = Outbox(path, 1 << 30)
    with caplog.at_level(logging.ERROR):
        box.open()
        rows = box.fetch(0, 100)  # reading the smashed pages finds the corruption
        box.append(range(2), render)
    assert any("corrupt" in r.getMessage() for r in caplog.records)
    assert list(tmp_path.glob("q.db.corrupt-*"))
    assert box.durable
    assert len(drain_all(box)) == 2 + len(rows)
    assert box.last_seq > before
    box.close()


def test_full_disk_falls_back_to_memory_and_recovers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    # 40 pages of 4 KiB: the outbox runs out of space after a few hundred messages.
    box = Outbox(tmp_path / "q.db", 1 << 30, max_pages=40, retry_interval=30.0, clock=clock)
    box.open()
    assert box.durable
    with caplog.at_level(logging.WARNING):
        for i in range(0, 3000, 100):
            box.append(range(i, i + 100), render)
    assert not box.durable, "the disk filled up"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "full" in errors[0]
    assert "memory" in errors[0]
    # Nothing lost, nothing reordered: disk rows first, then the memory ones, seq contiguous.
    seqs = drain_all(box)
    assert len(seqs) == 3000
    assert seqs == list(range(seqs[0], seqs[0] + 3000))
    assert box.messages == 3000
    assert box.dropped == 0
    # The broker acknowledges everything; the disk has room again; the next
    # append after the retry interval goes back to disk.
    box.delete(seqs)
    assert box.messages == 0
    clock.now += 31
    box.append(range(5), render)
    assert box.durable
    assert [r.seq for r in box.fetch(0, 10)] == list(range(seqs[-1] + 1, seqs[-1] + 6))
    box.close()
    again = Outbox(tmp_path / "q.db", 1 << 30)
    again.open()
    assert again.messages == 5, "the messages written after recovery are durable"
    assert again.last_seq == seqs[-1] + 5, "no jump in seq after a recovered fallback"
    again.close()


def test_memory_fallback_is_bounded_and_counts_drops(tmp_path: Path) -> None:
    clock = Clock()
    size = len(render(0, 10**15)[1])
    box = Outbox(tmp_path / "q.db", 1 << 30, memory_max_bytes=size * 20, max_pages=30, clock=clock)
    box.open()
    for i in range(0, 5000, 100):
        box.append(range(i, i + 100), render)
    assert not box.durable
    seqs = drain_all(box)
    assert box.dropped == 5000 - len(seqs)
    assert box.dropped > 0
    # What is left: every disk row, then the newest memory rows, contiguous at the end.
    assert seqs[-1] == box.last_seq
    box.close()


def test_unopenable_path_uses_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    box = Outbox(blocker / "sub" / "q.db", 1 << 20)  # parent is a file: cannot create
    with caplog.at_level(logging.ERROR):
        box.open()
    assert not box.durable
    assert sum(r.levelno >= logging.ERROR for r in caplog.records) == 1
    box.append(range(3), render)
    assert len(box.fetch(0, 10)) == 3
    box.close()


def test_second_writer_is_refused(tmp_path: Path) -> None:
    """Two agents on one outbox would interleave seqs; the exclusive lock keeps the second off it."""
    path = tmp_path / "q.db"
    box = Outbox(path, 1 << 20)
    box.open()
    box.append(range(2), render)
    other = sqlite3.connect(path, timeout=0.1)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("SELECT count(*) FROM outbox").fetchone()
    other.close()
    box.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(1, 30)),
            st.tuples(st.just("ack"), st.integers(1, 40)),
            st.tuples(st.just("reopen"), st.just(0)),
        ),
        max_size=25,
    ),
    cap_messages=st.integers(5, 60),
)
def test_accounting_holds_for_any_sequence(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int]], cap_messages: int
) -> None:
    """appended == delivered + dropped + queued; queued rows are the newest undelivered, in seq order."""
    path = tmp_path_factory.mktemp("prop") / "q.db"
    size = len(render(0, 10**15)[1])
    cap = size * cap_messages
    box = Outbox(path, cap, clock=Clock())
    box.open()
    appended = acked = dropped = 0
    item = 0
    for op, n in ops:
        if op == "append":
            box.append(range(item, item + n), render)
            item += n
            appended += n
        elif op == "ack":
            rows = box.fetch(0, n)
            box.delete([r.seq for r in rows])
            acked += len(rows)
        else:
            dropped += box.dropped
            box.close()
            box = Outbox(path, cap, clock=Clock())
            box.open()
        assert box.bytes <= cap
        seqs = [r.seq for r in box.fetch(0, 10_000)]
        assert seqs == sorted(seqs)
        assert box.messages == len(seqs)
        assert appended == acked + dropped + box.dropped + box.messages
        if seqs:
            assert seqs[-1] == box.last_seq, "the newest message is never the one dropped"
    box.close()
