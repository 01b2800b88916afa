from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from ai_service.settings import ConfigurationError, Settings, get_settings


def test_defaults_put_the_database_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'dte-ai.db'}"
    assert settings.folio_low_water_mark == 10
    assert settings.max_request_bytes == 2 * 1024 * 1024
    assert settings.sii_environment == "certificacion"
    assert settings.admin_token is None
    assert settings.trusted_sii_keys == []


def test_environment_is_read_when_settings_are_built_not_at_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DTE_AI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DTE_AI_FOLIO_LOW_WATER_MARK", "3")
    monkeypatch.setenv("DTE_AI_SII_ENVIRONMENT", "produccion")
    monkeypatch.setenv("DTE_AI_ADMIN_TOKEN", "t" * 40)
    monkeypatch.setenv("DTE_AI_REDIS_URL", "redis://127.0.0.1:6379/0")  # unknown: ignored
    settings = get_settings()
    assert settings.data_dir == tmp_path
    assert settings.database_url.endswith(f"{tmp_path}/dte-ai.db")
    assert settings.folio_low_water_mark == 3
    assert settings.sii_environment == "produccion"
    assert settings.admin_token is not None
    assert "t" * 40 not in repr(settings)  # secrets never printed
    assert get_settings() is settings


def test_explicit_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTE_AI_DATABASE_URL", "postgresql+psycopg://u@127.0.0.1/x")
    assert Settings().database_url == "postgresql+psycopg://u@127.0.0.1/x"


@pytest.mark.parametrize(
    "raw", ['["/k/a.pem", "/k/b.pem"]', "/k/a.pem,/k/b.pem", " /k/a.pem , /k/b.pem "]
)
def test_trusted_sii_keys_accept_a_json_list_or_commas(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DTE_AI_TRUSTED_SII_KEYS", raw)
    assert Settings().trusted_sii_keys == [Path("/k/a.pem"), Path("/k/b.pem")]


def test_invalid_environment_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTE_AI_SII_ENVIRONMENT", "staging")
    with pytest.raises(ValueError, match="certificacion"):
        Settings()


def test_embedded_secret_key_is_generated_once_with_owner_only_permissions(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    key = settings.secret_key_bytes()
    path = tmp_path / "data" / "secret.key"
    assert len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings(data_dir=tmp_path / "data").secret_key_bytes() == key
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".secret.")]


def test_configured_secret_key_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=SecretStr("k" * 40))
    assert settings.secret_key_bytes() == b"k" * 40
    assert not (tmp_path / "secret.key").exists()


def test_short_secret_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="at least 32"):
        Settings(data_dir=tmp_path, secret_key=SecretStr("short")).secret_key_bytes()


def test_shared_database_requires_an_explicit_secret_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://u@127.0.0.1/x")
    with pytest.raises(ConfigurationError, match="DTE_AI_SECRET_KEY"):
        settings.secret_key_bytes()
    assert not (tmp_path / "secret.key").exists()


def test_the_prompt_gate_is_on_unless_an_operator_turns_it_off(tmp_path: Path) -> None:
    gated = Settings(data_dir=tmp_path, llm_provider="anthropic").llm_config()
    # the shipped lock holds no real recording yet: nothing may reach a provider
    assert gated.evaluated_fingerprints == frozenset()
    allowed = Settings(
        data_dir=tmp_path, llm_provider="anthropic", llm_allow_unevaluated_prompts=True
    ).llm_config()
    assert allowed.evaluated_fingerprints is None
