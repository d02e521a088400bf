"""The Azurite fixture fails loudly (never skips) when the emulator is missing."""

from __future__ import annotations

import pytest

from tests.support import azure as az


def test_missing_azurite_fails_with_install_advice(monkeypatch, tmp_path):
    monkeypatch.setattr(az, "ROOT", tmp_path)  # no .tools/node_modules here
    monkeypatch.setenv("PATH", str(tmp_path))  # and none on PATH
    with pytest.raises(pytest.fail.Exception, match="make tools"):
        az.azurite_binary()


def test_running_azurite_listens_on_loopback_ephemeral_ports(request):
    running = az.azurite(request)
    assert running.process.poll() is None
    assert running.blob_port not in (10000, 0) and running.table_port not in (10002, 0)
    assert "127.0.0.1" in running.connection_string and az.ACCOUNT in running.connection_string
