"""The binding rules, checked before anything starts: no token means this machine only; a taken port or a bad
address is one line saying what to do."""

from __future__ import annotations

import socket
import subprocess

import pytest

from dlbox.services import server
from tests.conftest import assert_user_error, run_main


@pytest.fixture
def nothing_starts(monkeypatch):
    """Any bind or server start during the test fails it: refusals happen before either."""

    def refuse(*a, **k):
        raise AssertionError("a socket was bound or a server started")

    monkeypatch.setattr(server, "_try_bind", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.mark.parametrize("ip", ["0.0.0.0", "192.168.1.20", "::"])
def test_a_non_local_ip_without_a_token_is_refused(capsys, nothing_starts, ip):
    res = run_main(capsys, "notebook", "--ip", ip, "--no-token")
    assert_user_error(res, f"--ip {ip}", "token")


def test_an_ip_that_is_not_an_address_is_refused(capsys, nothing_starts):
    assert_user_error(run_main(capsys, "notebook", "--ip", "my-laptop"), "not an IP address")


def test_a_missing_runs_folder_is_refused(capsys, nothing_starts, tmp_path):
    assert_user_error(run_main(capsys, "board", tmp_path / "nope"), "does not exist")


def test_a_taken_port_is_one_line_naming_a_free_one(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("a server started"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = assert_user_error(run_main(capsys, "board", tmp_path, "--port", port), f"port {port}", "in use")
    spare = int(line.split("use --port ")[1].split()[0])
    assert spare != port and server.check_port("127.0.0.1", spare) == spare


def test_local_addresses():
    assert all(server.is_local(ip) for ip in ("127.0.0.1", "127.0.1.1", "::1", "localhost"))
    assert not any(server.is_local(ip) for ip in ("0.0.0.0", "::", "10.0.0.5"))


def test_a_working_folder_that_is_a_file_is_refused(capsys, nothing_starts, tmp_path):
    (tmp_path / "notes").write_text("")
    assert_user_error(run_main(capsys, "notebook", "--dir", tmp_path / "notes"), "is a file")
