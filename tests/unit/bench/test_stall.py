"""``python -m bench.stall`` refuses a stop that leaves no level to compare on either side."""

from __future__ import annotations

import pytest

from bench.stall import main


@pytest.mark.parametrize(
    "argv",
    [
        ["--at", "60"],  # under 90 s of samples before the stop
        ["--at", "400"],  # under 90 s of samples after it (the run lasts 480 s)
        ["--at", "120", "--backlog-first", "30"],  # the backlog's stop eats into the window
    ],
)
def test_a_stop_without_a_window_on_each_side_is_refused_before_anything_runs(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert "--at must leave 90 s of samples before the stop and after it" in capsys.readouterr().err
