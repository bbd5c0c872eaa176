"""The modes of a v2/sr3 subscriber, step by step: the local copy it announces, the
masks' rejections (``log_reject``), ``exchange_suffix``, queues made by someone else
(``queue_declare``/``queue_bind`` off), ``discard`` and ``delete``."""

from __future__ import annotations

import hashlib
import logging
import os

import pytest

from sarra.config.loader import load, table_defaults
from sarra.config.paths import Paths
from sarra.core import message
from sarra.core.delivery import Delivery
from sarra.core.errors import TransferError
from sarra.flow import consumer
from sarra.flow.context import discard_file, file_hooks
from sarra.flow.download import Downloader
from sarra.flow.engine import Flow
from sarra.flow.repost import LocalCopy, followed_by, post_exchange
from sarra.fs.placement import place_of, relative_target
from sarra.hooks import HookSet
from tests.fixtures.fakebroker import FakeBroker


def fake(**values):
    return table_defaults("subscribe", "c1").replace(**values)


def post(rel: str, data: bytes = b"hello", base: str = "http://source/") -> Delivery:
    h = {"sum": "d," + hashlib.md5(data).hexdigest(), "parts": f"1,{len(data)},1,0,0"}
    return Delivery(message.new_post(base, rel, h))


# -- the local copy


def test_the_local_copy_is_announced_under_its_own_base_url(tmp_path):
    d = post("WXO/a/f.txt")
    d.ok()
    d.local_path = tmp_path / "srv" / "in" / "f.txt"
    LocalCopy("http://me:8000/", str(tmp_path / "srv"), "v02.post")(d)
    n = d.post_notice
    assert n is not None and n.baseurl == "http://me:8000/" and n.relpath == "in/f.txt"
    assert n.topic == "v02.post.in" and n.headers["sum"] == d.notice.headers["sum"]
    assert d.notice.baseurl == "http://source/"  # the original is kept for reports


def test_without_post_base_url_the_copy_is_announced_as_a_file_url(tmp_path):
    d = post("f.txt")
    d.ok()
    d.local_path = tmp_path / "f.txt"
    LocalCopy(None, None, "v02.post")(d)
    assert d.post_notice is not None and d.post_notice.url == f"file:{tmp_path}/f.txt"


def test_a_password_in_post_base_url_is_never_posted(tmp_path):
    copy = LocalCopy("sftp://me:s3cret@host/", str(tmp_path), "v02.post")
    n = copy.notice_for(post("f").notice, str(tmp_path / "f"))
    assert n is not None and "s3cret" not in n.baseurl


def test_a_copy_outside_post_base_dir_is_not_announced(tmp_path, caplog):
    d = post("f.txt")
    d.ok()
    d.local_path = tmp_path / "elsewhere" / "f.txt"
    LocalCopy("http://me/", str(tmp_path / "srv"), "v02.post")(d)
    assert d.post_notice is None
    assert "is not below post_base_dir" in caplog.text


def test_a_failed_download_announces_nothing(tmp_path):
    d = post("f.txt")
    d.fail("404")
    followed_by(lambda d: None, LocalCopy("http://me/", str(tmp_path), "v02.post"))(d)
    assert d.post_notice is None


def test_post_exchange_suffix_names_the_users_exchange():
    o = fake(post_broker="amqp://bob@h/", post_exchange_suffix="mine")
    assert post_exchange(o) == "xs_bob_mine"
    assert post_exchange(fake(post_broker="amqp://bob@h/")) == "xs_bob"
    assert post_exchange(fake(post_broker="amqp://bob@h/", post_exchange="xpublic")) == "xpublic"


# -- selecting


def test_exchange_suffix_consumes_the_users_exchange():
    o = fake(broker="amqp://alice@h/", exchange="xpublic", exchange_suffix="kk")
    assert consumer.exchange(o) == "xs_alice_kk"
    assert consumer.exchange(fake(exchange="xpublic")) == "xpublic"


def run_flow(o, deliveries):
    broker = FakeBroker()
    for d in deliveries:
        broker.put(d.notice)
    from sarra.flow.source import BrokerSource

    flow = Flow(source=BrokerSource(broker), select=consumer.Selector(o))
    flow.run_once()
    return broker


@pytest.mark.parametrize("log_reject, level", [(False, logging.DEBUG), (True, logging.INFO)])
def test_mask_rejections_are_logged_at_info_only_with_log_reject(tmp_path, caplog, log_reject,
                                                                 level):  # fmt: skip
    caplog.set_level(logging.DEBUG, "sarra.flow.engine")
    o = load("dd_subscribe", None, [("reject", ".*skip.*"), ("log_reject", str(log_reject))],
             Paths.under(tmp_path))  # fmt: skip
    run_flow(o, [post("a/skip.txt")])
    [record] = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert record.levelno == level and "rejected by accept/reject masks" in record.getMessage()


class Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *a, **kw: self.calls.append(name) or True


@pytest.mark.parametrize(
    "declare_queue, bind, expected",
    [(True, True, ["declare_exchange", "declare_queue", "bind", "consume"]),
     (False, True, ["declare_exchange", "bind", "consume"]),
     (True, False, ["declare_exchange", "declare_queue", "consume"]),
     (False, False, ["declare_exchange", "consume"])],
)  # fmt: skip
def test_a_queue_made_by_someone_else_is_left_as_it_is(declare_queue, bind, expected):
    b = Recorder()
    o = fake(queue_declare=declare_queue, queue_bind=bind)
    consumer.setup_queue(b, o, "q_admin", "xpublic")
    assert b.calls == expected


# -- discard and delete


def test_discard_deletes_the_file_after_the_on_file_hooks(tmp_path):
    f = tmp_path / "tree" / "f.txt"
    f.parent.mkdir()
    f.write_text("x")
    d = post("f.txt")
    d.place = place_of(str(tmp_path / "tree"), "f.txt")
    d.local_path = d.place.path
    seen = []

    class Hooks(HookSet):
        def has(self, event):
            return True

        def emit(self, event, d):
            seen.append(f.exists())

    file_hooks(Hooks(), discard=True)(d)
    assert seen == [True] and not f.exists()


def test_discard_never_follows_a_link_out_of_the_tree(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("keep")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "sub").symlink_to(outside)
    d = post("sub/f.txt")
    d.place = place_of(str(tree), "sub/f.txt")
    d.local_path = d.place.path
    discard_file(d)
    assert (outside / "f.txt").read_text() == "keep"


class Source:
    """A transfer serving ``files`` that records deletes (or refuses them)."""

    def __init__(self, files, refuse=False):
        self.files, self.refuse, self.deleted = files, refuse, []

    def get(self, path, dest, *, offset=0, length=None, limit=None, sums=(), progress=None,
            throttle=0):  # fmt: skip
        data = self.files[path]
        dest.write(data)
        for s in sums:
            s.update(data)
        return len(data)

    def delete(self, path):
        if self.refuse:
            raise TransferError("http: delete is not supported", permanent=True)
        self.deleted.append(path)


class Pool:
    def __init__(self, transfer):
        self.transfer = transfer

    def get(self, baseurl):
        return self.transfer


def downloader(tmp_path, source, **opts):
    def locate(d):
        d.place = place_of(str(tmp_path), relative_target(d.notice, mirror=True))
        d.local_path = d.place.path

    return Downloader(fake(**opts), locate=locate, transfers=Pool(source))


def test_delete_removes_the_source_once_the_copy_is_in_place(tmp_path):
    source = Source({"/a/f.txt": b"hello"})
    d = post("a/f.txt")
    downloader(tmp_path, source, delete=True)(d)
    assert (tmp_path / "a" / "f.txt").read_bytes() == b"hello"
    assert source.deleted == ["/a/f.txt"] and d.report == (201, "Downloaded")


def test_without_delete_the_source_stays(tmp_path):
    source = Source({"/a/f.txt": b"hello"})
    downloader(tmp_path, source)(post("a/f.txt"))
    assert source.deleted == []


def test_a_bad_copy_never_deletes_the_source(tmp_path):
    source = Source({"/a/f.txt": b"tampered"})
    d = post("a/f.txt", b"hello")
    with pytest.raises(TransferError):
        downloader(tmp_path, source, delete=True)(d)
    assert source.deleted == [] and not os.path.exists(tmp_path / "a" / "f.txt")


def test_a_source_that_cannot_delete_leaves_a_good_copy(tmp_path, caplog):
    source = Source({"/a/f.txt": b"hello"}, refuse=True)
    d = post("a/f.txt")
    downloader(tmp_path, source, delete=True)(d)
    assert d.outcome == "ok" and "source file not deleted" in caplog.text
