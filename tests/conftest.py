"""Shared pytest fixtures.

Broker fixtures (need the local RabbitMQ and root for ``rabbitmqctl``):

- ``rabbit`` (session): checks the broker; skips the test when there is none, but fails
  it when the environment variable CI is set, so CI cannot go green by skipping.
- ``vhost``: a fresh vhost ``t_<test hash>_<random>`` with full permissions for guest,
  deleted afterwards.  Set SARRA_TEST_VHOST_PREFIX to change the ``t`` prefix.
- ``amqp_url``: ``amqp://guest:guest@localhost/<vhost>`` for ``sarra.broker.connection.Broker``.
- ``broker_user``: factory ``broker_user(name, configure, write, read) -> (user, pw)``
  making a restricted user on the test vhost, deleted afterwards.

Helpers such as ``queue_counts`` and ``close_connections`` are in
``tests/fixtures/rabbit.py``.
"""

from __future__ import annotations

import uuid
from typing import Callable, Iterator

import pytest

from tests.fixtures import rabbit as rmq


@pytest.fixture(scope="session")
def rabbit() -> type:
    """Admin access to the local broker: the ``tests.fixtures.rabbit`` helper module."""
    rmq.require_rabbit()
    return rmq


@pytest.fixture
def vhost(rabbit, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh vhost for this test, guest has full permissions; deleted afterwards."""
    name = rabbit.vhost_name(request.node.nodeid)
    rabbit.add_vhost(name)
    try:
        yield name
    finally:
        rabbit.delete_vhost(name)


@pytest.fixture
def amqp_url(vhost: str) -> str:
    """``amqp://guest:guest@localhost/<vhost>``."""
    return rmq.amqp_url(vhost)


@pytest.fixture
def broker_user(rabbit, vhost: str) -> Iterator[Callable[[str, str, str, str], tuple[str, str]]]:
    """Factory for restricted users on ``vhost``; every user made is deleted afterwards."""
    made: list[str] = []

    def make(name: str, configure: str, write: str, read: str) -> tuple[str, str]:
        user = f"{vhost}_{name}"
        pw = uuid.uuid4().hex
        rabbit.add_user(vhost, user, pw, configure, write, read)
        made.append(user)
        return user, pw

    try:
        yield make
    finally:
        for user in made:
            rabbit.delete_user(user)
