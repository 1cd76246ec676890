"""`ganforge doctor RUN --try` and the forks it is built on (training/fork.py): each remedy is
trained from the checkpoint before the doctor's first event, the unchanged branch is the run
itself continued, and the branches are ranked by the run's eval metric."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from cli_errors import assert_one_line_error
from ganforge import GanforgeError
from ganforge.cli import main
from ganforge.run import Run
from ganforge.training.fork import fork_run
from ganforge.training.loop import Trainer
from tiny import TINY_POINTS

# ring8 with tiny networks collapses within 40 steps, and the doctor says so
SOURCE = {
    **TINY_POINTS,
    "steps": 40,
    "log_every": 5,
    "checkpoint_every": 10,
    "keep_checkpoints": 10,
}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Run:
    return ganforge.train(**SOURCE, out=str(tmp_path_factory.mktemp("doctor") / "src"))


def tensors_at(run: Run, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(dict(run.checkpoints)[step]))


def test_a_run_forked_unchanged_is_the_run_continued(source, tmp_path):
    branch = fork_run(source, dict(source.checkpoints)[20], source.config, tmp_path / "same")
    mine, theirs = tensors_at(branch, 40), tensors_at(source, 40)
    assert set(mine) == set(theirs)
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    # its history up to the branch is the source's, then its own records follow
    assert [r["step"] for r in branch.metrics()] == [r["step"] for r in source.metrics()]
    assert branch.metrics()[:4] == source.metrics()[:4]
    assert json.loads((branch.path / "fork.json").read_text())["step"] == 20


def test_a_fork_takes_the_new_learning_rate_and_keeps_the_rest(source, tmp_path):
    config = source.config.replace(lr_d=1e-5, steps=20)
    trainer = Trainer(config, tmp_path / "lr", resuming=False)
    try:
        from ganforge.training.checkpoint import load_checkpoint
        from ganforge.training.fork import fitted_state

        tensors, meta = load_checkpoint(dict(source.checkpoints)[20])
        tensors, meta, fresh = fitted_state(trainer, tensors, meta, source.config)
        trainer.start_from(tensors, meta)
    finally:
        trainer.close()
    assert fresh == [] and trainer.state.step == 20
    assert trainer.optimizers["discriminator"].param_groups[0]["lr"] == 1e-5
    assert trainer.optimizers["generator"].param_groups[0]["lr"] == source.config.lr_g
    saved = tensors_at(source, 20)
    d_weight = trainer.family.networks["discriminator"].state_dict()["net.1.weight"]
    assert torch.equal(d_weight, saved["networks.discriminator.net.1.weight"])
    moments = trainer.optimizers["discriminator"].state_dict()["state"][0]["exp_avg"]
    assert torch.equal(moments, saved["optimizers.discriminator.state.0.exp_avg"])


def test_a_change_of_ds_shape_starts_d_afresh_and_keeps_g(source, tmp_path):
    config = source.config.replace(pack=2, steps=21)
    branch = fork_run(source, dict(source.checkpoints)[20], config, tmp_path / "pack")
    assert json.loads((branch.path / "fork.json").read_text())["fresh"] == ["discriminator"]
    assert branch.config.pack == 2 and branch.step == 21
    # one step on from the source's G (not from a new G): close to it, not equal
    mine, theirs = tensors_at(branch, 21), tensors_at(source, 20)
    key = "networks.generator.net.0.weight"
    assert not torch.equal(mine[key], theirs[key])
    assert (mine[key] - theirs[key]).abs().max() < 0.05


def test_doctor_try_ranks_the_remedies_from_the_checkpoint_before_the_first_event(
    source, tmp_path, capsys
):
    first = min(e["step"] for e in source.events())
    branch_step = max(step for step, _ in source.checkpoints if step < first)
    out = tmp_path / "trials"
    argv = ["doctor", str(source.path), "--try", "--steps", str(40 - branch_step)]
    assert main([*argv, "--remedies", "2", "--jobs", "2", "--n", "300", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "ranked by reverse_kl (lower is better)" in printed

    lines = (out / "trials.md").read_text().splitlines()
    rows = [line for line in lines if re.match(r"\| \d", line)]
    names = [row.split("|")[2].strip() for row in rows]
    assert len(names) == 3 and "unchanged" in names
    # ranked by each branch's own eval.json, lower reverse KL first
    scores = []
    for name in names:
        folder = out / ("unchanged" if name == "unchanged" else name.lstrip("-").replace(" ", "-"))
        fork = json.loads((folder / "fork.json").read_text())
        assert fork["step"] == branch_step
        scores.append(json.loads((folder / "eval.json").read_text())["metrics"]["reverse_kl"])
    assert scores == sorted(scores)
    # the unchanged branch is the run itself, continued: its weights at 40 are the run's
    same = Run(out / "unchanged")
    assert all(torch.equal(v, tensors_at(source, 40)[k]) for k, v in tensors_at(same, 40).items())
    page = (out / "trials.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == 3 and all((out / image).is_file() for image in images)


def test_doctor_try_refuses_bad_requests_before_any_work(source, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["doctor", str(source.path), "--try", "--out", str(out)]) == 2
    assert_one_line_error(capsys, "--out")
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["doctor", str(source.path), "--try", "--steps", "0"]) == 2
    assert_one_line_error(capsys, "--steps")
    assert main(["doctor", str(source.path), "--steps", "5"]) == 2
    assert_one_line_error(capsys, "--steps", "--try")
    assert not (source.path / "trials").exists()


def test_a_run_without_events_has_nothing_to_try(tmp_path):
    calm = ganforge.train(**{**TINY_POINTS, "steps": 2}, out=str(tmp_path / "calm"))
    assert not calm.events()
    with pytest.raises(GanforgeError, match="^--try: the doctor saw no problem"):
        from ganforge.training.doctor.trials import try_remedies

        try_remedies(calm)


def test_a_branch_that_fails_or_a_flag_refused_is_a_row_and_the_rest_are_ranked(
    source, tmp_path, monkeypatch
):
    from ganforge.training.doctor import trials

    broken = tmp_path / "broken.csv"
    broken.write_text("x,y\n0.5,oops\n")
    # a remedy argparse refuses, and one whose data is unreadable once its branch starts
    fixes = ["--pack two", f"--data {broken}"]
    monkeypatch.setattr(trials, "suggested_fixes", lambda *args: fixes)
    out = tmp_path / "trials"
    trials.try_remedies(source, steps=2, jobs=1, n=100, out=out)
    rows = {
        row.split("|")[2].strip(): row
        for row in (out / "trials.md").read_text().splitlines()
        if row.startswith("| ")
    }
    assert rows["unchanged"].startswith("| 1 |")
    assert "refused: --pack two: argument --pack: invalid int value: 'two'" in rows["--pack two"]
    failed = rows[f"--data {broken}"]
    assert failed.startswith("| — |") and "failed:" in failed and "broken.csv" in failed
    assert "failed:" in (out / "trials.html").read_text()
