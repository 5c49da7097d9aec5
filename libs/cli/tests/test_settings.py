"""Where the client finds its gateway and key: options, then the local stack's files, then defaults."""

from __future__ import annotations

import json

import pytest

from pressroom_cli import settings
from pressroom_cli.errors import UsageError


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.HOME_ENV, str(tmp_path))
    return tmp_path


def test_with_nothing_running_the_defaults_apply(home):
    assert settings.resolve_gateway(None) == settings.DEFAULT_GATEWAY
    assert settings.resolve_token(None) is None


def test_the_local_stack_gives_its_gateway_and_key(home):
    (home / settings.STATE_FILE).write_text(json.dumps({"gateway_url": "http://127.0.0.1:9123/"}))
    (home / settings.KEY_FILE).write_text("prk_local\n")
    assert settings.resolve_gateway(None) == "http://127.0.0.1:9123"
    assert settings.resolve_token(None) == "prk_local"


def test_options_win_over_the_local_stack(home):
    (home / settings.STATE_FILE).write_text(json.dumps({"gateway_url": "http://127.0.0.1:9123"}))
    (home / settings.KEY_FILE).write_text("prk_local")
    assert settings.resolve_gateway("https://press.example.com/") == "https://press.example.com"
    assert settings.resolve_token(" prk_given ") == "prk_given"


def test_an_unreadable_state_file_is_ignored(home):
    (home / settings.STATE_FILE).write_text("{not json")
    assert settings.resolve_gateway(None) == settings.DEFAULT_GATEWAY


@pytest.mark.parametrize("value", ["127.0.0.1:8000", "ftp://host", "http://"])
def test_a_gateway_that_is_not_an_http_url_is_a_usage_error(value):
    with pytest.raises(UsageError, match="expected an http"):
        settings.resolve_gateway(value)


def test_the_websocket_follows_the_gateway_scheme_and_path():
    assert settings.ws_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/v1/ws"
    assert settings.ws_url("https://example.com/press") == "wss://example.com/press/v1/ws"
    assert settings.job_path("a/b") == "/v1/jobs/a%2Fb"


def test_the_stack_writes_where_the_client_reads(tmp_path):
    """One definition of the file names: the embedded stack uses the client's."""
    from pressroom_devstack.config import StackPaths

    paths = StackPaths(tmp_path)
    assert paths.state_file == tmp_path / settings.STATE_FILE
    assert paths.api_key == tmp_path / settings.KEY_FILE
