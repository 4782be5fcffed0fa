"""``python -m bench.stall`` refuses a stop that leaves no settled level on either side of it."""

from __future__ import annotations

import pytest

from bench.stall import main


@pytest.mark.parametrize(
    "argv",
    [
        ["--at", "100"],  # 90 s before the stop, but not all after the first trim (60 s)
        ["--at", "400"],  # under 90 s of samples after it (the run lasts 480 s)
        ["--at", "160", "--backlog-first", "30"],  # the backlog's stop eats into the window
    ],
)
def test_a_stop_without_a_settled_window_on_each_side_is_refused_before_anything_runs(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "--at must leave 90 s of samples between the consumer's first heap trim" in err
