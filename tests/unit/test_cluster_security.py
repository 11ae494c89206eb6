"""The token every Ray process of ours starts with, and the refusals without one."""

from __future__ import annotations

import os
import stat

import pytest

from engine.cluster.security import TOKEN_FILE, ClusterTokenMissing, token_for


@pytest.fixture(autouse=True)
def _no_operator_token(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)


def test_a_node_without_a_token_is_refused(tmp_path):
    with pytest.raises(ClusterTokenMissing, match="never runs without one"):
        token_for(tmp_path)
    assert not (tmp_path / TOKEN_FILE).exists()


def test_the_head_makes_a_private_token_once(tmp_path):
    token = token_for(tmp_path, generate=True)
    first = token.path.read_text()
    assert len(first.strip()) == 64
    assert stat.S_IMODE(token.path.stat().st_mode) == 0o600
    assert token_for(tmp_path, generate=True).path.read_text() == first
    env = token.env()
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN_PATH"] == str(tmp_path / TOKEN_FILE)


def test_a_token_others_can_read_is_refused(tmp_path):
    token = token_for(tmp_path, generate=True)
    token.path.chmod(0o644)
    with pytest.raises(ClusterTokenMissing, match="readable by others"):
        token_for(tmp_path)


def test_the_operators_token_is_kept_private(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", "s3cret")
    token = token_for(tmp_path)
    assert token.path.read_text().strip() == "s3cret"
    assert stat.S_IMODE(token.path.stat().st_mode) == 0o600
    token.apply()
    assert "RAY_AUTH_TOKEN" not in os.environ
    assert os.environ["RAY_AUTH_TOKEN_PATH"] == str(token.path)


def test_an_empty_token_file_is_no_token(tmp_path, monkeypatch):
    empty = tmp_path / "given"
    empty.write_text("\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(empty))
    with pytest.raises(ClusterTokenMissing, match="holds no token"):
        token_for(tmp_path)


def test_doctor_refuses_a_cluster_without_a_token(tmp_path, monkeypatch, capsys):
    from engine.cli import main

    monkeypatch.setenv("SANDBOX_DATA_DIR", str(tmp_path))
    assert main(["doctor", "--cluster", "127.0.0.1:1"]) == 1
    assert "no Ray auth token" in capsys.readouterr().err


def test_no_head_where_the_ray_client_port_would_open(tmp_path, monkeypatch):
    from engine import errors
    from engine.cluster import ray_nodes
    from engine.config import Settings

    monkeypatch.setattr(ray_nodes, "ray_client_installed", lambda: True)
    with pytest.raises(errors.InvalidRequest, match="Ray Client's port 10001"):
        ray_nodes.head_process(Settings(data_dir=tmp_path))
    assert not (tmp_path / TOKEN_FILE).exists()


def test_a_head_starts_with_token_auth_and_no_dashboard(tmp_path, monkeypatch):
    from engine.cluster import ray_nodes
    from engine.config import Settings

    monkeypatch.setattr(ray_nodes, "ray_client_installed", lambda: False)
    monkeypatch.setattr(ray_nodes, "ray_executable", lambda: "ray")
    head = ray_nodes.head_process(Settings(data_dir=tmp_path), port=6390)
    assert head.argv[:3] == ["ray", "start", "--head"]
    assert "--include-dashboard=false" in head.argv and "--num-cpus=0" in head.argv
    assert head.env["RAY_AUTH_MODE"] == "token"
    assert head.env["RAY_AUTH_TOKEN_PATH"] == str(tmp_path / TOKEN_FILE)
    node = ray_nodes.worker_process(Settings(data_dir=tmp_path), "10.0.0.1:6390", "n1")
    assert '--resources={"sandbox-node:n1": 1}' in node.argv
    assert node.env == head.env
