"""Settings come from ``GUARDIAN_*`` variables, validated like values passed in."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from guardian.config import Settings


def test_each_field_reads_its_variable_in_any_case(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GUARDIAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("guardian_max_audio_seconds", "12.5")
    monkeypatch.setenv("GUARDIAN_API_REQUIRE_KEY_FOR_VERIFY", "true")
    monkeypatch.setenv("GUARDIAN_NOT_A_SETTING", "ignored")
    s = Settings()
    assert (s.home, s.max_audio_seconds, s.api_require_key_for_verify) == (
        tmp_path / "home",
        12.5,
        True,
    )


def test_a_value_passed_in_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GUARDIAN_DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("GUARDIAN_HOME", str(tmp_path / "env"))
    s = Settings(home=tmp_path / "given", database_url=None)
    assert (s.home, s.database_url) == (tmp_path / "given", None)


def test_the_default_home_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GUARDIAN_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings().home == (tmp_path / ".guardian").resolve()
    monkeypatch.setenv("GUARDIAN_HOME", "~/elsewhere")
    assert Settings().home == (tmp_path / "elsewhere").resolve()


@pytest.mark.parametrize(
    ("name", "value"),
    [("GUARDIAN_API_RATE_PER_MINUTE", "0"), ("GUARDIAN_MAX_INPUT_BYTES", "lots")],
)
def test_a_bad_variable_is_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("GUARDIAN_").lower()):
        Settings()
