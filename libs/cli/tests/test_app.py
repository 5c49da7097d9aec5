"""One `pressroom` command: the client's commands, and those installed packages add by entry point."""

from __future__ import annotations

from importlib.metadata import EntryPoint

from typer.testing import CliRunner

from pressroom_cli import app as cli_app

runner = CliRunner()


def test_the_embedded_stack_adds_its_commands_to_the_client():
    result = runner.invoke(cli_app.build_app(), ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("generate", "jobs", "up", "status", "env", "keys"):
        assert f" {command} " in result.output, result.output


def test_without_plugins_only_the_client_commands_exist():
    result = runner.invoke(cli_app.build_app(plugins=False), ["--help"])
    assert " generate " in result.output and " jobs " in result.output
    assert " up " not in result.output and " keys " not in result.output


def test_a_package_whose_commands_cannot_load_is_reported_and_left_out(monkeypatch):
    broken = EntryPoint(name="broken", value="pressroom_no_such_module:app", group=cli_app.COMMANDS_GROUP)
    monkeypatch.setattr(cli_app, "entry_points", lambda group: [broken])
    app = cli_app.build_app()
    result = runner.invoke(app, ["jobs", "--help"])
    assert result.exit_code == 0 and "list" in result.output
