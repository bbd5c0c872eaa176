"""dd_post: a publish the broker refuses (403 channel close) is a failed post, each named."""

from __future__ import annotations

import pytest

from sarra.config.loader import table_defaults
from sarra.core.errors import AccessRefused
from sarra.flow.engine import Flow
from sarra.flow.sinks import NoticePublisher
from sarra.post.notices import NoticeMaker
from sarra.roles.post import FileSource
from tests.fixtures.fakebroker import FakeBroker


class RefusingBroker(FakeBroker):
    """Closes the publishing channel with 403 on posts to ``refused_exchange``: the
    refusal comes with the next confirm wait, as with RabbitMQ."""

    def __init__(self, refused_exchange: str, login_refused: bool = False) -> None:
        super().__init__()
        self.refused_exchange = refused_exchange
        self.login_refused = login_refused
        self._pending: list = []

    def publish_nowait(self, msgs):
        for m in msgs:
            if m.exchange == self.refused_exchange:
                self._pending.append(m)
            else:
                self.published.append(m)

    def confirmed(self, max_outstanding: int = 0):
        if self.login_refused:
            raise AccessRefused("login refused")
        if self._pending:
            refused, self._pending = self._pending, []
            raise AccessRefused(
                f"publish refused: ACCESS_REFUSED - {self.refused_exchange}", refused
            )
        return []


def opts(tmp_path):
    return table_defaults("post").replace(post_base_url="http://h/", post_base_dir=str(tmp_path))


def run_post(tmp_path, broker, exchange, n, batch=3, window=5000):
    for i in range(n):
        (tmp_path / f"f{i}").write_text(str(i))
    src = FileSource(
        sorted(str(p) for p in tmp_path.glob("f*")), NoticeMaker(opts(tmp_path)), False
    )
    publisher = NoticePublisher(broker, exchange, window=window, late=src.late_failure)
    Flow(source=src, publisher=publisher, batch=batch, idle=0.0).run()
    publisher.finish()
    src.unconfirmed()
    return src


@pytest.mark.parametrize("n, window", [(1, 5000), (4, 5000), (10, 2), (7, 1)])
def test_every_refused_post_is_named_and_none_counted(tmp_path, n, window):
    src = run_post(tmp_path, RefusingBroker("xs_alice"), "xs_alice", n, window=window)
    assert src.posted == 0
    assert len(src.errors) == n
    for i in range(n):
        [line] = [e for e in src.errors if f"f{i} " in e + " "]
        assert "refused" in line and "ACCESS_REFUSED" in line


def test_posts_to_an_allowed_exchange_are_counted(tmp_path):
    src = run_post(tmp_path, RefusingBroker("xs_alice"), "xs_eve", 4)
    assert src.posted == 4 and not src.errors


def test_a_refusal_without_posts_to_name_still_stops_the_run(tmp_path):
    with pytest.raises(AccessRefused, match="login"):
        run_post(tmp_path, RefusingBroker("x", login_refused=True), "xs_eve", 2)
