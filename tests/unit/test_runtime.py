from __future__ import annotations

from sarra.config.loader import table_defaults
from sarra.core import message
from sarra.flow.context import Context
from sarra.post.notices import NoticeMaker


class Recorder:
    def __init__(self):
        self.deleted = []

    def delete_queue(self, name):
        self.deleted.append(name)


def ctx(instance, reset):
    c = Context.__new__(Context)  # only the fields reset_queue reads
    c.options, c.instance = table_defaults("subscribe").replace(reset=reset), instance
    return c


def test_reset_deletes_the_queue_from_the_first_instance_only():
    b = Recorder()
    ctx(1, True).reset_queue(b, "q_bob.x")
    ctx(2, True).reset_queue(b, "q_bob.x")
    ctx(1, False).reset_queue(b, "q_bob.x")
    assert b.deleted == ["q_bob.x"]


def test_post_subtopic_replaces_the_directories_in_the_topic(tmp_path):
    f = tmp_path / "a b" / "f.txt"
    f.parent.mkdir()
    f.write_text("x")
    o = table_defaults("post").replace(
        post_base_url="http://h/", post_base_dir=str(tmp_path), post_subtopic="my custom#1"
    )
    (n,) = NoticeMaker(o, broker_user="alice", broker_host="h").for_path(str(f))
    assert n.topic == "v02.post.my custom%231".replace(" ", "%20")
    assert (
        message.decode(n.topic, message.encode(n).headers, message.encode(n).body).relpath
        == "a b/f.txt"
    )
