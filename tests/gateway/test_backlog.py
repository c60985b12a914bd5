"""The backlog's paging rules, sans I/O: which page next, what each page releases, binds."""

from __future__ import annotations

from gateway.backlog import HELD_LIMIT, Backlog, PageRequest
from gateway.store import Message


def msg(seq: int, *, user: str | None = None) -> Message:
    return Message(
        seq=seq,
        message_id=f"m{seq:05d}",
        app_id="a",
        msg_key=f"k{seq}",
        push_type="simple",
        delivery_type="user" if user else "android",
        target_id=user or "dev",
        title="t",
        content="c",
        ext={},
        created_at=seq,
        expires_at=10**15,
        modified_at=seq,
        status=0,
    )


def seqs(messages: list[Message]) -> list[int]:
    return [m.seq for m in messages]


def test_pages_follow_the_cursor_until_a_short_one() -> None:
    backlog = Backlog(3)
    first = backlog.first()
    assert first == PageRequest(after_seq=0, limit=3)
    assert seqs(backlog.apply(first, [msg(1), msg(2), msg(3)], None)) == [1, 2, 3]
    second = backlog.next_request()
    assert second == PageRequest(after_seq=3, limit=3)
    assert seqs(backlog.apply(second, [msg(7)], None)) == [7]
    assert backlog.done and backlog.next_request() is None


def test_live_messages_wait_for_the_last_page_and_are_never_doubled() -> None:
    backlog = Backlog(2)
    first = backlog.first()
    assert not backlog.live(msg(5))  # routed while the first page is read
    assert not backlog.live(msg(6))
    assert seqs(backlog.apply(first, [msg(1), msg(5)], None)) == [1, 5]  # 5 came with the page
    request = backlog.next_request()
    assert request is not None
    assert seqs(backlog.apply(request, [], None)) == [6]  # the last page: 6 after it, once
    assert backlog.live(msg(8))  # paging over: straight through


def test_a_delivery_newer_than_the_read_is_released_after_the_page() -> None:
    backlog = Backlog(5)
    first = backlog.first()
    assert not backlog.live(msg(2))  # an approval of an old message, say, during the read
    assert seqs(backlog.apply(first, [msg(1), msg(3), msg(4), msg(5), msg(6)], None)) == [
        1,
        3,
        4,
        5,
        6,
        2,
    ]
    assert backlog.live(msg(4))  # below the cursor: no page can bring it any more


def test_a_full_held_list_reads_one_more_page() -> None:
    backlog = Backlog(2)
    first = backlog.first()
    for seq in range(10, 10 + HELD_LIMIT + 1):
        assert not backlog.live(msg(seq))
    assert seqs(backlog.apply(first, [msg(1)], None)) == [1]  # short, but something was not held
    request = backlog.next_request()
    assert request == PageRequest(after_seq=1, limit=2)


def test_a_bind_after_the_backlog_catches_up_to_what_it_attached() -> None:
    backlog = Backlog(2)
    first = backlog.first()
    backlog.apply(first, [], None)
    assert backlog.done
    backlog.rebound("alice", 40)
    request = backlog.next_request()
    assert request == PageRequest(after_seq=0, limit=2, user_id="alice", upto_seq=40)
    backlog.apply(request, [msg(3, user="alice"), msg(9, user="alice")], None)
    request = backlog.next_request()
    assert request == PageRequest(after_seq=9, limit=2, user_id="alice", upto_seq=40)
    backlog.apply(request, [msg(40, user="alice")], None)
    assert backlog.done


def test_a_bind_during_paging_leaves_what_is_above_the_cursor_to_the_main_stream() -> None:
    backlog = Backlog(2)
    backlog.apply(backlog.first(), [msg(1), msg(20)], None)
    backlog.rebound("alice", 30)  # no read in flight: the next main read comes after it
    request = backlog.next_request()
    assert request == PageRequest(after_seq=0, limit=2, user_id="alice", upto_seq=20)


def test_a_bind_while_the_last_page_is_read_catches_up_on_everything() -> None:
    backlog = Backlog(2)
    first = backlog.first()
    backlog.rebound("alice", 30)  # lands while the first page is read (read before the bind)
    assert seqs(backlog.apply(first, [msg(5)], None)) == [5]  # short: the main stream ends
    request = backlog.next_request()
    assert request == PageRequest(after_seq=0, limit=2, user_id="alice", upto_seq=30)


def test_a_bind_while_a_full_page_is_read_waits_for_its_cursor() -> None:
    backlog = Backlog(2)
    first = backlog.first()
    backlog.rebound("alice", 30)
    backlog.apply(first, [msg(5), msg(12)], None)  # full: the main stream reads on after the bind
    request = backlog.next_request()
    assert request == PageRequest(after_seq=0, limit=2, user_id="alice", upto_seq=12)


def test_an_unbind_ends_the_catch_up() -> None:
    backlog = Backlog(2, paging=False)
    backlog.rebound("alice", 30)
    assert not backlog.done
    backlog.rebound(None, None)
    assert backlog.done


def test_a_page_read_after_the_bind_already_brought_what_it_attached() -> None:
    backlog = Backlog(2)
    first = backlog.first()
    backlog.rebound("alice", 30)  # the call comes while the read is queued behind the bind
    page = [msg(4, user="alice"), msg(30, user="alice")]
    assert seqs(backlog.apply(first, page, "alice")) == [4, 30]  # read after: bound to alice
    assert backlog.next_request() == PageRequest(after_seq=30, limit=2)  # no catch-up at all


def test_a_later_page_read_after_the_bind_leaves_the_catch_up_below_its_start() -> None:
    backlog = Backlog(2)
    backlog.apply(backlog.first(), [msg(1), msg(8)], None)
    request = backlog.next_request()
    backlog.rebound("alice", 30)
    backlog.apply(request, [msg(9, user="alice"), msg(12, user="alice")], "alice")
    assert backlog.next_request() == PageRequest(0, 2, user_id="alice", upto_seq=8)
