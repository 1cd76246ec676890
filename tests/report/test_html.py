"""`ganforge report`: the self-contained page and the progress GIF."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from ganforge import evaluate_run
from ganforge.cli import main
from ganforge.report.gif import grids_to_gif
from ganforge.report.html import build_report, read_events


def test_report_holds_curves_samples_gif_events_and_evaluation(tiny_train):
    run = tiny_train(steps=12, sample_every=4, eval_every=6, eval_n=64)
    events = [
        {
            "step": 6,
            "event": "mode_collapse",
            "evidence": {"diversity": 0.01, "explanation": "samples look alike"},
            "remedies": ["--diffaugment color"],
        },
        {"step": 9, "event": "<script>alert(1)</script>", "evidence": {}, "remedies": []},
    ]
    lines = [json.dumps(e) for e in events] + ["{torn", "\xff garbage"]
    (run.path / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    evaluate_run(run, n=50, metrics="fid")

    page = build_report(run).read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') >= 3 + 3  # figures + 3 grids (4, 8, 12)
    assert "data:image/gif;base64," in page
    for text in (
        "Losses",
        "Evaluation",
        "mode_collapse",
        "samples look alike",
        "--diffaugment color",
        "2 event(s)",
        "Last evaluation",
        "step 12",
    ):
        assert text in page, text
    assert "<script>" not in page and "&lt;script&gt;" in page  # event text is escaped
    with Image.open(run.path / "samples" / "progress.gif") as gif:
        assert gif.n_frames == 3


def test_read_events_skips_damaged_lines(tmp_path):
    (tmp_path / "events.jsonl").write_bytes(
        b'{"step": 1, "event": "exploding", "evidence": {}, "remedies": []}\n\xff\xfe\n[1]\n'
        b'{"step": "x", "event": "y"}\n'
    )
    assert [e["event"] for e in read_events(tmp_path)] == ["exploding"]


def test_gif_of_nothing_is_none(tmp_path):
    assert grids_to_gif([], tmp_path / "x.gif") is None
    assert not (tmp_path / "x.gif").exists()


def test_each_gif_frame_says_its_step(tmp_path):
    grid = tmp_path / "grid.png"
    Image.new("RGB", (40, 30), "gray").save(grid)
    gif = grids_to_gif([grid, grid], tmp_path / "x.gif", captions=["step 1", "step 200"])
    with Image.open(gif) as image:
        assert image.n_frames == 2  # identical grids, told apart by their captions
        assert image.size[1] > 30
        strips = []
        for index in range(2):
            image.seek(index)
            frame = np.asarray(image.convert("L"))
            assert (frame[:30] == frame[0, 0]).all()  # the grid itself is untouched
            strips.append(frame[30:])
    assert (strips[0] < 128).any() and (strips[1] < 128).sum() > (strips[0] < 128).sum()


def test_cli_report(trained_run, capsys, tmp_path):
    out = tmp_path / "page.html"
    assert main(["report", str(trained_run.path), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert "No events were recorded" in out.read_text(encoding="utf-8")


def test_cli_report_of_a_non_run_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a ganforge run" in capsys.readouterr().err


def summary(page: str) -> str:
    start = page.index("<div class=summary>")
    return page[start : page.index("</div>", start)]


def test_the_summary_box_comes_first_and_says_where_the_run_stands(tiny_train):
    run = tiny_train(steps=12, eval_every=6, eval_n=64)
    best = [r for r in run.metrics() if r.get("eval_best") is True][-1]
    page = build_report(run).read_text(encoding="utf-8")
    assert page.index("<div class=summary>") < page.index("Training curves")
    box = summary(page)
    assert "Step 12 of 12." in box
    assert f"Best checkpoint: step {best['step']} (fid {best['eval_fid']:.4g})" in box
    assert "The doctor found no problems." in box
    assert f"Measure the samples: ganforge eval {run.path}" in box

    events = [
        {"step": 9, "event": "oscillation", "evidence": {}, "remedies": []},
        {"step": 6, "event": "mode_collapse", "evidence": {}, "remedies": []},
        {"step": 11, "event": "mode_collapse", "evidence": {}, "remedies": []},
    ]
    (run.path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    evaluate_run(run, n=50, metrics="fid")
    box = summary(build_report(run).read_text(encoding="utf-8"))
    expected = "The doctor found 2 kind(s) of problem: oscillation (from step 9), "
    assert expected + "mode_collapse (from step 6)." in box
    assert 'href="#diagnosis"' in box and "no problems" not in box
    assert "Measure the samples" not in box  # eval.json exists


def test_the_summary_of_a_run_without_the_doctor_or_evaluations(tiny_train):
    box = summary(build_report(tiny_train(doctor=False)).read_text(encoding="utf-8"))
    assert "The doctor was off (--no-doctor)." in box and "Best checkpoint" not in box
