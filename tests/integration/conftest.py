import pytest

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
