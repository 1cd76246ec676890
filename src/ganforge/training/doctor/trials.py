"""`ganforge doctor RUN --try`: the doctor tries its own remedies. From the checkpoint written
before its first event, the run is branched once per suggested remedy, and once unchanged;
each branch trains the same number of steps (in parallel processes), is scored by the run's
eval metric, and the branches are ranked in RUN/trials/trials.md and trials.html (with each
branch's final samples).

Exact resume makes the comparison fair: every branch starts from the same state (weights,
moments, data position, RNG), so the unchanged branch is the run itself continued, and a
remedy's branch differs from it by the remedy alone (training/fork.py).
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import math
import multiprocessing
import os
import shlex
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from ganforge.bounds import MAX_EVAL_SAMPLES, check_at_most
from ganforge.config import TrainConfig
from ganforge.errors import GanforgeError
from ganforge.metrics.catalog import LOWER, get_metric, list_metrics
from ganforge.models.registry import check_model_size, describe_model
from ganforge.run import SAMPLES_DIR, Run
from ganforge.training.doctor.causes import likely_causes
from ganforge.training.doctor.explain import suggested_fixes

TRIALS_DIR = "trials"  # in the run folder, by default
UNCHANGED = "unchanged"
MAX_TRIAL_STEPS = 1_000_000
MAX_JOBS = 64
MAX_REMEDIES = 16
RANKING_PREFERENCE = ("reverse_kl", "mode_kl", "fid")  # where the run tracked no metric


@dataclass
class Trial:
    """One branch: its remedy's flags ("" for the unchanged run), its config (None: the
    remedy does not apply to this run, `refused` says why), and what it scored (or why its
    training `failed`: the other branches are still ranked)."""

    flags: str
    config: TrainConfig | None
    folder: Path
    refused: str = ""
    failed: str = ""
    metrics: dict = field(default_factory=dict)
    events: list[str] = field(default_factory=list)  # the doctor's events after the branch

    @property
    def name(self) -> str:
        return self.flags or UNCHANGED

    @property
    def unranked(self) -> str:
        """Why the branch has no rank ("refused: ...", "failed: ..."), or "" when it has one."""
        if self.config is None:
            return f"refused: {self.refused}"
        return f"failed: {self.failed}" if self.failed else ""


def remedy_options(flags: str) -> dict:
    """`ganforge train` flags ("--pack 2") as TrainConfig options ({"pack": 2}); flags the
    command line refuses raise GanforgeError with argparse's reason."""
    from ganforge.cli import parse_train_flags

    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            return parse_train_flags(shlex.split(flags))
    except SystemExit:
        lines = said.getvalue().strip().splitlines()
        reason = lines[-1].split(": error: ", 1)[-1] if lines else "not a flag of ganforge train"
        raise GanforgeError(f"{flags}: {reason}") from None


def try_remedies(
    run: Run,
    *,
    steps: int | None = None,
    jobs: int | None = None,
    out: str | Path | None = None,
    n: int | None = None,
    max_remedies: int = 4,
) -> Path:
    """Branch `run` before its first event, train the unchanged run and up to `max_remedies`
    remedies `steps` steps each (default: as many as the run had left after the branch), `jobs`
    at a time, score each on `n` samples (ganforge eval's default), and write the ranked
    table. Returns the Markdown table's path."""
    _check_counts(steps, jobs, n, max_remedies)
    events = [e for e in run.events() if isinstance(e.get("step"), int)]
    if not events:
        raise GanforgeError(f"--try: the doctor saw no problem in '{run.path}': nothing to try")
    first = min(e["step"] for e in events)
    before = [(s, path) for s, path in run.checkpoints if s < first]
    branch_step, checkpoint = before[-1] if before else (0, None)
    steps = steps if steps is not None else max(run.config.steps - branch_step, 1)
    out = Path(out) if out is not None else run.path / TRIALS_DIR
    if out.exists() and any(out.iterdir()):
        raise GanforgeError(f"--out: '{out}' is not empty; give another folder or remove it")
    causes = likely_causes(run.config, {e.get("event") for e in events})
    fixes = suggested_fixes(run.config, causes, events)
    trials = [_trial(run, "", out, branch_step + steps)]
    trials += [_trial(run, flags, out, branch_step + steps) for flags in fixes[:max_remedies]]
    runnable = [t for t in trials if t.config is not None]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(runnable)))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    out.mkdir(parents=True, exist_ok=True)
    work = [(str(run.path), checkpoint, t.config.to_dict(), t.folder, n, threads) for t in runnable]
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads
    with ProcessPoolExecutor(jobs, mp_context=spawn) as pool:
        futures = [pool.submit(_train_and_score, job) for job in work]
        for trial, future in zip(runnable, futures, strict=True):
            try:
                trial.metrics, trial.events = future.result()
            except Exception as exc:  # noqa: BLE001 - one branch's failure is a row, not the end
                trial.failed = _one_line(exc)
    if all(t.failed for t in runnable):
        raise GanforgeError(f"--try: every branch failed; the first: {runnable[0].failed}")
    metric = ranking_metric(run.config, [t.metrics for t in runnable])
    ranked = sorted(trials, key=lambda t: _sort_key(t, metric))
    table = markdown_table(run, ranked, metric, branch_step, steps)
    (out / "trials.md").write_text(table)
    (out / "trials.html").write_text(html_page(run, ranked, metric, branch_step, steps))
    return out / "trials.md"


def _check_counts(steps: int | None, jobs: int | None, n: int | None, remedies: int) -> None:
    """The counts the command takes, refused before any work."""
    for flag, value, low, high in (
        ("--steps", steps, 1, MAX_TRIAL_STEPS),
        ("--jobs", jobs, 1, MAX_JOBS),
        ("--n", n, 2, MAX_EVAL_SAMPLES),
        ("--remedies", remedies, 1, MAX_REMEDIES),
    ):
        if value is not None and value < low:
            raise GanforgeError(f"{flag}: must be at least {low}, got {value}")
        if value is not None:
            check_at_most(flag, value, high)


def _trial(run: Run, flags: str, out: Path, total_steps: int) -> Trial:
    """The branch of `flags` (its config checked as a new run's would be), or refused."""
    folder = out / (_folder_name(flags) or UNCHANGED)
    try:
        options = remedy_options(flags) if flags else {}
        config = run.config.replace(**options, steps=total_steps, out=str(folder), progress=False)
        config.validate()
        describe_model(config)  # the model takes the remedy (built on the meta device)
        check_model_size(config, config.resolution, config.channels)
    except GanforgeError as exc:
        return Trial(flags, None, folder, refused=str(exc))
    return Trial(flags, config, folder)


def _one_line(exc: BaseException) -> str:
    """An exception as one line: a branch process that died is named as such."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, BrokenProcessPool):
        return f"its process ended abruptly (out of memory?): {text}"
    return text if isinstance(exc, GanforgeError) else f"{type(exc).__name__}: {text}"


def _folder_name(flags: str) -> str:
    words = [w.lstrip("-") for w in shlex.split(flags)]
    return "-".join("".join(c if c.isalnum() or c in "._-" else "_" for c in w) for w in words)


def _train_and_score(job: tuple) -> tuple[dict, list[str]]:
    """One branch, in a process of its own: fork, train, evaluate."""
    source, checkpoint, options, folder, n, threads = job
    import torch

    torch.set_num_threads(threads)
    from ganforge.evaluate import evaluate_run
    from ganforge.training.fork import fork_run

    config = TrainConfig.from_dict(options)
    branch = fork_run(Run(source), checkpoint, config, Path(folder))
    result = evaluate_run(branch, n=n, write=True)
    step = json.loads((Path(folder) / "fork.json").read_text())["step"]
    later = [e.get("event", "?") for e in branch.events() if e.get("step", 0) > step]
    return result["metrics"], list(dict.fromkeys(later))


def ranking_metric(config: TrainConfig, results: list[dict]) -> str:
    """The run's --eval-metric where its branches were measured by it; otherwise the first
    of RANKING_PREFERENCE, then of the trackable metrics, that they were."""
    found = {name for metrics in results for name in metrics}
    candidates = [config.eval_metric, *RANKING_PREFERENCE]
    candidates += [m.name for m in list_metrics(trackable=True)]
    for name in candidates:
        if name in found:
            return name
    raise GanforgeError("--try: the branches were measured by no metric that ranks")


def _sort_key(trial: Trial, metric: str) -> tuple:
    value = trial.metrics.get(metric)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return (1, 0.0, trial.name)  # refused or unmeasured: last
    sign = 1 if get_metric(metric).better == LOWER else -1
    return (0, sign * value, trial.name)


def _columns(metric: str, trials: list[Trial]) -> list[str]:
    """The ranking metric first, then the other metrics with a direction that were measured."""
    names = [m.name for m in list_metrics(trackable=True)]
    measured = {name for t in trials for name in t.metrics}
    return [metric] + [n for n in names if n in measured and n != metric]


def _value(trial: Trial, name: str) -> str:
    value = trial.metrics.get(name)
    if value is None:
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _summary(run: Run, metric: str, branch_step: int, steps: int) -> str:
    start = (
        f"its checkpoint at step {branch_step}"
        if branch_step
        else "step 0 (no checkpoint before the first event)"
    )
    better = "lower" if get_metric(metric).better == LOWER else "higher"
    return (
        f"{run.path}: each branch trained {steps} steps from {start}, "
        f"ranked by {metric} ({better} is better)"
    )


def markdown_table(run: Run, trials: list[Trial], metric: str, branch_step: int, steps: int) -> str:
    columns = _columns(metric, trials)
    lines = [
        f"# Remedy trials of {run.path.name}",
        "",
        _summary(run, metric, branch_step, steps),
        "",
        "| rank | trial | " + " | ".join(columns) + " | doctor's events after the branch |",
        "|---" * (len(columns) + 3) + "|",
    ]
    for rank, trial in enumerate(trials, 1):
        if trial.unranked:
            lines.append(f"| — | {trial.name} | {trial.unranked} |")
            continue
        values = " | ".join(_value(trial, name) for name in columns)
        later = ", ".join(trial.events) or "none"
        lines.append(f"| {rank} | {trial.name} | {values} | {later} |")
    return "\n".join(lines) + "\n"


def html_page(run: Run, trials: list[Trial], metric: str, branch_step: int, steps: int) -> str:
    columns = _columns(metric, trials)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for rank, trial in enumerate(trials, 1):
        name = html.escape(trial.name)
        if trial.unranked:
            rows.append(
                f"<tr><td>—</td><td>{name}</td><td colspan=99>"
                f"{html.escape(trial.unranked)}</td></tr>"
            )
            continue
        image = (trial.folder / SAMPLES_DIR / "final.png").relative_to(trial.folder.parent)
        cells = "".join(f"<td>{_value(trial, c)}</td>" for c in columns)
        later = html.escape(", ".join(trial.events) or "none")
        rows.append(
            f"<tr><td>{rank}</td><td><code>{name}</code></td>{cells}<td>{later}</td>"
            f'<td><img src="{html.escape(image.as_posix())}" width="220" alt="{name}"></td></tr>'
        )
    title = f"Remedy trials of {html.escape(run.path.name)}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
        "body{font-family:sans-serif;margin:2em}td,th{padding:.3em .6em;border-bottom:1px solid "
        "#ddd;text-align:left;vertical-align:middle}</style></head><body>"
        f"<h1>{title}</h1><p>{html.escape(_summary(run, metric, branch_step, steps))}</p>"
        f"<table><tr><th>rank</th><th>trial</th>{head}<th>doctor's events after the branch</th>"
        f"<th>final samples</th></tr>{''.join(rows)}</table></body></html>\n"
    )
