"""Run the threaded client's test bodies against both drivers.

A module (or test) marked ``@pytest.mark.drivers("threaded", "aio")`` runs once per
driver: with ``aio``, the ``etcd_client`` fixture and the ``connect`` factory give
an :mod:`etcd3.aio` client behind a blocking facade (``_aio_bridge.AioBridge``), so
the same body exercises the asyncio client. A test marked ``drivers("threaded")``
inside such a module (one that reaches into ``client._transport``, say) runs with the
threaded client only. Modules without the marker are untouched: one run, threaded.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List

import pytest
from _aio_bridge import AioBridge

from etcd3.testing import EtcdServer
from etcd3.testing.fixtures import threaded_client

DRIVERS = ("threaded", "aio")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "drivers(*names): run the test once per client driver "
        "('threaded', 'aio') through the etcd_client and connect fixtures")
    config.addinivalue_line(
        "markers", "bridged: a threaded test body run against etcd3.aio through the "
        "bridge (set on the aio run of a drivers(...) test; CI's etcd 3.4 stage leaves "
        "these out, the asyncio client's own test files run there)")


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("client_driver") == "aio":
            item.add_marker(pytest.mark.bridged)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "client_driver" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("drivers")
    if marker is None:
        return
    unknown = set(marker.args) - set(DRIVERS)
    if unknown:
        raise ValueError(f"unknown drivers {sorted(unknown)}; use {DRIVERS}")
    metafunc.parametrize("client_driver", marker.args, indirect=True)


@pytest.fixture
def client_driver(request: pytest.FixtureRequest) -> str:
    """``"threaded"`` or ``"aio"``: which client the test body gets."""
    return str(getattr(request, "param", "threaded"))


@pytest.fixture
def connect(client_driver: str) -> Iterator[Callable[..., Any]]:
    """``connect(**etcd3_client_kwargs)``: a client of the test's driver (closed,
    and with ``aio`` its loop stopped, after the test)."""
    import etcd3
    import etcd3.aio

    made: List[Any] = []

    def make(*args: Any, **kwargs: Any) -> Any:
        if client_driver == "aio":
            client: Any = AioBridge(etcd3.aio.client(*args, **kwargs))
        else:
            client = etcd3.client(*args, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        if isinstance(client, AioBridge):
            client.close_bridge()
        else:
            client.close()


@pytest.fixture
def etcd_client(etcd_server: EtcdServer, client_driver: str,
                request: pytest.FixtureRequest) -> Iterator[Any]:
    """The ``etcd3.testing`` fixture, for the test's driver: a client connected to
    ``etcd_server``, with no keys in it."""
    if client_driver == "threaded":
        yield from threaded_client(etcd_server)
        return
    bridge = AioBridge(request.getfixturevalue("etcd_aio_client"))
    try:
        yield bridge
    finally:
        bridge.close_bridge()
