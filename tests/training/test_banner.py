"""The start banner: where the run goes at once, then the time left measured over its first
steps (not a README's promise), and nothing when progress output is off."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganforge.training.banner import MEASURED_STEPS, StartBanner, duration_text


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def banner_lines(first_step: int, steps: int, seconds_per_step: float) -> list[str]:
    lines, clock = [], FakeClock()
    banner = StartBanner(
        "dcgan on mnist-mini", Path("runs/demo"), first_step, steps, True, clock, lines.append
    )
    banner.started()
    for step in range(first_step + 1, steps + 1):
        clock.now += seconds_per_step if step > first_step + 1 else 7.0  # a slow first step
        banner.stepped(step)
    return lines


def test_the_banner_says_where_then_the_time_measured_after_the_first_step():
    start, estimate = banner_lines(0, 1500, 0.25)
    assert start.startswith("ganforge: dcgan on mnist-mini, steps 1 to 1500 -> runs/demo")
    assert "Ctrl-C stops cleanly" in start
    # 0.25 s a step (the 7 s first step is not counted) for the 1500 - 21 steps left
    left = 0.25 * (1500 - 1 - MEASURED_STEPS)
    assert estimate == f"ganforge: about {left / 60:.1f} min to go (0.25 s a step over 20 steps)"


def test_a_resumed_run_counts_from_where_it_resumes():
    start, estimate = banner_lines(1000, 1100, 0.5)
    assert "steps 1001 to 1100" in start
    assert "about 40 s to go (0.5 s a step" in estimate  # (1100 - 1021) x 0.5 = 39.5 s


def test_a_run_shorter_than_the_measurement_gives_no_estimate():
    assert len(banner_lines(0, MEASURED_STEPS, 0.1)) == 1


@pytest.mark.parametrize(
    "seconds, text",
    [(12.4, "12 s"), (89, "89 s"), (90, "1.5 min"), (5399, "90.0 min"), (7200, "2.0 h")],
)
def test_durations_in_the_unit_a_person_would_say(seconds, text):
    assert duration_text(seconds) == text


def test_training_prints_the_banner_only_with_progress(tiny_train, capsys):
    run = tiny_train("shown", steps=MEASURED_STEPS + 3, progress=True)
    err = capsys.readouterr().err
    assert f"ganforge: mlp on digits, steps 1 to {MEASURED_STEPS + 3} -> {run.path}" in err
    assert "to go (" in err
    tiny_train("quiet", steps=MEASURED_STEPS + 3)
    assert "ganforge: mlp on digits" not in capsys.readouterr().err
