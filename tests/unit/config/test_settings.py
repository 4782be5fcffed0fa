"""Settings: a bad, missing or misspelled variable stops start-up with a line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from config.settings import SettingsError, known_variables, load_settings
from worker.cli import main


def test_defaults_load_without_any_variable(tmp_path: Path) -> None:
    s = load_settings(env_file=tmp_path / "absent.env")
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.store.replication == {"datacenter1": 1}
    assert "message_reaction" in s.telegram.allowed_updates


def test_misspelled_variable_is_named_with_a_suggestion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGBRIDGE_KAFKA__BOOTSTRAP_SERVER", "x:1")
    with pytest.raises(SettingsError) as err:
        load_settings(env_file=None)
    assert "TGBRIDGE_KAFKA__BOOTSTRAP_SERVER " in str(err.value) + " "
    assert "did you mean TGBRIDGE_KAFKA__BOOTSTRAP_SERVERS" in str(err.value)


def test_misspelled_variable_in_dotenv_is_named(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("TGBRIDGE_STORE__KEYSPAC=abc\n")
    with pytest.raises(SettingsError, match="TGBRIDGE_STORE__KEYSPAC"):
        load_settings(env_file=env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TGBRIDGE_STORE__PORT", "not-a-port"),
        ("TGBRIDGE_STORE__KEYSPACE", "Bad-Name"),
        ("TGBRIDGE_STORE__REPLICATION", "dc1"),
        ("TGBRIDGE_KAFKA__TOPIC", "spaces are bad"),
        ("TGBRIDGE_TELEGRAM__MODE", "carrier-pigeon"),
        ("TGBRIDGE_STORE__WRITE_CONSISTENCY", "MOSTLY"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings(env_file=None)
    assert str(err.value).startswith(name + ":")
    assert "\n" not in str(err.value)


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TGBRIDGE_TELEGRAM__BOTS",
        '[{"token": "123456:SECRET-TOKEN", "mode": "webhook", "webhook_secret": "hook-SECRET"}]',
    )
    monkeypatch.setenv("TGBRIDGE_STORE__PASSWORD", "db-SECRET")
    s = load_settings(env_file=None)
    printed = f"{s!r} {s} {s.printable()}"
    assert "SECRET" not in printed
    assert "**********" in str(s.printable())
    assert s.telegram.bots[0].bot_id == 123456


def test_bad_token_error_does_not_echo_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGBRIDGE_TELEGRAM__BOTS", '["notatoken-SECRET"]')
    with pytest.raises(SettingsError) as err:
        load_settings(env_file=None)
    assert "TGBRIDGE_TELEGRAM__BOTS" in str(err.value)
    assert "SECRET" not in str(err.value)


def test_lists_and_maps_from_plain_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGBRIDGE_STORE__CONTACT_POINTS", "10.0.0.1, 10.0.0.2")
    monkeypatch.setenv("TGBRIDGE_STORE__REPLICATION", "eu:3,us:3")
    monkeypatch.setenv("TGBRIDGE_STORE__LOCAL_DC", "eu")
    monkeypatch.setenv("TGBRIDGE_TELEGRAM__ALLOWED_UPDATES", "message,edited_message")
    s = load_settings(env_file=None)
    assert s.store.contact_points == ["10.0.0.1", "10.0.0.2"]
    assert s.store.replication == {"eu": 3, "us": 3}
    assert s.telegram.allowed_updates == ["message", "edited_message"]


def test_local_dc_must_be_replicated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGBRIDGE_STORE__LOCAL_DC", "mars")
    with pytest.raises(SettingsError, match="TGBRIDGE_STORE__LOCAL_DC 'mars'"):
        load_settings(env_file=None)


def test_every_variable_maps_to_a_field() -> None:
    names = known_variables()
    assert "TGBRIDGE_KAFKA__BOOTSTRAP_SERVERS" in names
    assert "TGBRIDGE_TELEGRAM__BOTS" in names
    assert len(names) == len(set(names))


def test_cli_configuration_error_is_one_line_and_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TGBRIDGE_STORE__PORTT", "1")
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0
    assert "TGBRIDGE_STORE__PORTT" in result.output
    assert "Traceback" not in result.output


def test_local_services_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TGBRIDGE_DEV_KAFKA_PORT", "19092")
    assert load_settings(env_file=None).kafka.bootstrap_servers == "127.0.0.1:9092"
