import pytest

from faultproxy import fault_proxy
from harness import Harness


@pytest.fixture
def h():
    """A fresh redis-server (Unix socket + TCP port) and helpers; always torn down."""
    harness = Harness()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def bare():
    """Helpers without a redis-server (command-line checks)."""
    harness = Harness(with_redis=False)
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def px(h):
    """A fault proxy (faultproxy.py) in front of the test's redis-server's TCP port."""
    with fault_proxy(h.redis.port) as p:
        yield p
