"""The README's configuration table and commands agree with the code."""

from __future__ import annotations

import re
from pathlib import Path

from config.settings import known_variables
from worker.cli import main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_and_nothing_else() -> None:
    documented = set(re.findall(r"`(TGBRIDGE_[A-Z_]+)`", README))
    assert documented - set(known_variables()) == set(), "README names unknown settings"
    assert set(known_variables()) - documented == set(), "README misses settings"


def test_every_command_is_documented() -> None:
    for name in main.commands:
        assert f"`tgbridge {name}" in README, f"tgbridge {name} is not in the README"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in README
    assert [
        line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))
    ] == ["make test"]
