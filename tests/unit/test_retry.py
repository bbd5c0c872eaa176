from __future__ import annotations

from sarra.flow.retry import RetryQueue


def test_put_due_backoff_and_remove(tmp_path):
    q = RetryQueue(tmp_path, delay=10, ttl=100)
    assert q.put("v02.post.a", {"sum": "d,1"}, "t u r", "503", now=1000)
    assert q.due(10, now=1005) == []
    (e,) = q.due(10, now=1010)
    assert (e.attempts, e.reason, e.body) == (1, "503", "t u r")
    assert q.put(e.topic, e.headers, e.body, "503 again", previous=e, now=1010)
    assert q.due(10, now=1025) == []  # second attempt waits 20 s
    (e2,) = q.due(10, now=1030)
    assert e2.attempts == 2 and len(q) == 1
    q.remove(e2)
    assert len(q) == 0


def test_same_message_twice_is_one_entry(tmp_path):
    q = RetryQueue(tmp_path, delay=1)
    q.put("t", {"a": "1"}, "b", "x", now=0)
    q.put("t", {"a": "1"}, "b", "x", now=0)
    assert len(q) == 1


def test_entries_past_ttl_are_dropped(tmp_path):
    q = RetryQueue(tmp_path, delay=1, ttl=50)
    q.put("t", {}, "b", "x", now=0)
    (e,) = q.due(5, now=10)
    assert q.put("t", {}, "b", "x", previous=e, now=100) is False
    assert len(q) == 0


def test_entries_survive_a_restart(tmp_path):
    RetryQueue(tmp_path, delay=1).put("t", {"h": "v"}, "b", "x", now=0)
    (e,) = RetryQueue(tmp_path, delay=1).due(5, now=10)
    assert e.headers == {"h": "v"}


def test_unreadable_entry_is_dropped_with_a_log_line(tmp_path, caplog):
    (tmp_path / "bad.json").write_text("{not json")
    assert RetryQueue(tmp_path).due(5) == []
    assert "unreadable" in caplog.text
    assert not (tmp_path / "bad.json").exists()


def test_more_due_than_asked_are_handed_out_over_several_calls(tmp_path):
    q = RetryQueue(tmp_path, delay=1)
    for i in range(5):
        q.put("t", {}, f"b{i}", "x", now=0)
    first = q.due(3, now=10)
    for e in first:
        q.remove(e)
    assert len(first) == 3 and len(q.due(3, now=10)) == 2
