"""The Lab tab's training: a GAN on 2-D points trained live, one per page session, through the
same Trainer as `ganforge train` (so what the page shows is what a run would do), bounded in
steps, in a temporary folder that goes away with the session.

No web framework here: page.py drives a Lab a few steps per tick, tests drive it directly.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ganforge.config import TrainConfig
from ganforge.config.sections import G_LOSSES, LOSSES, OPTIMIZERS
from ganforge.data.points import POINT_DATASETS
from ganforge.errors import GanforgeError
from ganforge.records import read_records
from ganforge.run import EVENTS_FILE, METRICS_FILE
from ganforge.training.loop import Trainer, new_config

LAB_DATA = tuple(POINT_DATASETS)  # ring8, grid25, spiral, moons, circles
LAB_LOSSES, LAB_G_LOSSES, LAB_OPTIMIZERS = LOSSES, G_LOSSES, OPTIMIZERS
MAX_STEPS = 20_000  # the most a page's training may run: minutes of one CPU core
MAX_STEPS_PER_TICK = 200
MAX_PACK = 4  # PacGAN's packs; a larger one barely trains here (the lab's table, docs/reference)
MAX_UNROLL = 10  # Unrolled GAN's most; each unrolled step costs about one more D step
MAX_LABS = 4  # trainings at once on one server (one per open page)
IDLE_SECONDS = 30 * 60  # a training nobody advanced or drew for this long is closed
LAB_BATCH = 100  # PacGAN's batch, cut to a multiple of --pack
LOG_EVERY = 25  # a record (the curves, the doctor's checks) every this many steps
# The network of the mode-collapse lab (docs/reference/remedies, benchmarks/mode_collapse.py):
# PacGAN's setup.
NETWORK = {
    "model": "mlp",
    "z_dim": 2,
    "g_layers": "128,128,128",
    "g_activation": "relu",
    "g_norm": "batch",
    "d_layers": "128,128,128",
    "label_smoothing": 0.0,
    "ema_decay": 0.0,  # the frame shows G as it trains, not an average
}


@dataclass(frozen=True)
class LabSettings:
    """What the Lab's controls choose: the data, the objective, the optimiser, the fixes for
    mode collapse, when the doctor starts judging, and the bound on the steps."""

    data: str = "ring8"
    loss: str = "bce"
    g_loss: str = "non-saturating"
    optimizer: str = "adam"
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    lr_decay: str = "none"
    pack: int = 1
    minibatch_std: bool = False
    feature_matching: bool = False
    unroll: int = 0
    doctor_warmup: int = 500
    steps: int = 5000
    seed: int = 0

    @classmethod
    def from_controls(cls, *values) -> LabSettings:
        """From the controls' values in field order (numbers may come as floats or None)."""
        names = [f.name for f in fields(cls)]
        if len(values) != len(names):
            raise GanforgeError(f"lab: {len(names)} settings expected, got {len(values)}")
        given = dict(zip(names, values, strict=True))
        for name in ("lr_g", "lr_d"):
            given[name] = _number(_flag(name), given[name], float)
        for name in ("pack", "unroll", "doctor_warmup", "steps", "seed"):
            given[name] = _number(_flag(name), given[name], int)
        given["minibatch_std"] = bool(given["minibatch_std"])
        given["feature_matching"] = bool(given["feature_matching"])
        return cls(**given)

    def check(self) -> None:
        """The Lab's own limits (the config checks the rest, naming the flag)."""
        if self.data not in LAB_DATA:
            raise GanforgeError(
                f"--data: the lab trains on {', '.join(LAB_DATA)}, not {self.data!r}"
            )
        if not 1 <= self.steps <= MAX_STEPS:
            raise GanforgeError(
                f"--steps: the lab trains 1 to {MAX_STEPS:,} steps, got {self.steps:,} "
                "(train longer with `ganforge train`)"
            )
        if not 1 <= self.pack <= MAX_PACK:
            raise GanforgeError(f"--pack: 1 (off) to {MAX_PACK} in the lab, got {self.pack}")
        if not 0 <= self.unroll <= MAX_UNROLL:
            raise GanforgeError(f"--unroll: 0 (off) to {MAX_UNROLL} in the lab, got {self.unroll}")

    def config(self, run_dir: Path) -> TrainConfig:
        """The run's config: the mode-collapse lab's network, these settings, records every
        LOG_EVERY steps, no sample grids, one checkpoint at the end (the folder is thrown away)."""
        self.check()
        options = {
            **NETWORK,
            **asdict(self),
            "batch_size": LAB_BATCH // self.pack * self.pack,
            "log_every": LOG_EVERY,
            "sample_every": MAX_STEPS + 1,
            "checkpoint_every": MAX_STEPS + 1,
            "keep_checkpoints": 1,
            "n_grid": 1,
            "device": "cpu",  # a tiny network: a GPU would wait on the host at every step
            "progress": False,
            "out": str(run_dir),
        }
        return new_config(options, {})


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _number(label: str, value, kind: type) -> int | float:
    """A control's number as `kind`, or an error naming the control by `label`."""
    if value is None or value == "":
        raise GanforgeError(f"{label}: give a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GanforgeError(f"{label}: '{value}' is not a number") from None
    if not math.isfinite(number):
        raise GanforgeError(f"{label}: must be a finite number, got {value}")
    if kind is int:
        if not number.is_integer():
            raise GanforgeError(f"{label}: must be a whole number, got {value}")
        return int(number)
    return number


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread while the lab trains or draws: the server's other work (the other
    tabs, other pages) keeps the rest of the CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Lab:
    """One page's training: a Trainer in a temporary folder, advanced a few steps at a time up
    to its bound, until `close` stops it and removes the folder. Thread-safe: Gradio's worker
    threads tick it, and the page's unload closes it from another."""

    def __init__(self, settings: LabSettings):
        self.settings = settings
        self._folder = tempfile.TemporaryDirectory(prefix="ganforge-lab-")
        self.folder = Path(self._folder.name)
        self._lock = threading.Lock()
        self.touched = time.monotonic()
        self.closed = False
        self.playing = False  # whether the page's timer trains it (the page sets it)
        self.cache: dict = {}  # page.py's pictures of this lab, keyed by what they show
        try:
            run_dir = self.folder / "run"
            with one_thread():
                self.trainer = Trainer(settings.config(run_dir), run_dir, resuming=False)
        except BaseException:
            self._folder.cleanup()
            raise

    @property
    def run_dir(self) -> Path:
        return self.trainer.run_dir

    @property
    def step(self) -> int:
        return self.trainer.state.step

    @property
    def bound(self) -> int:
        return self.trainer.config.steps

    @property
    def finished(self) -> bool:
        return self.step >= self.bound

    def advance(self, steps: int) -> int:
        """Train up to `steps` more iterations (no further than the bound); how many ran."""
        steps = int(_number("steps per tick", steps, int))
        if not 1 <= steps <= MAX_STEPS_PER_TICK:
            raise GanforgeError(f"steps per tick: 1 to {MAX_STEPS_PER_TICK}, got {steps}")
        with self._lock:
            self._check_open()
            self.check_not_finished()
            run = min(steps, self.bound - self.step)
            with one_thread():
                for _ in range(run):
                    self.trainer.step()
            self.touched = time.monotonic()
            return run

    def check_not_finished(self) -> None:
        """Refuse to train past the bound, saying how to go on."""
        if self.finished:
            raise GanforgeError(
                f"the lab stopped at its bound of {self.bound:,} steps: press Reset to train "
                f"again (at most {MAX_STEPS:,} steps per training; longer: `ganforge train`)"
            )

    def frame(self) -> np.ndarray:
        """The GAN Lab frame of G and D now (uint8 (H, W, 3)): the family's progress picture."""
        with self._lock:
            self._check_open()
            trainer = self.trainer
            with one_thread():
                frames, _ = trainer.family.preview(
                    trainer.sampling_network(), 1, self.settings.seed, trainer.examples
                )
            self.touched = time.monotonic()
            return frames[0]

    def records(self) -> list[dict]:
        """The run's records so far (metrics.jsonl): losses, D's verdicts, modes captured."""
        return read_records(self.run_dir / METRICS_FILE)

    def events(self) -> list[dict]:
        """The doctor's events so far (events.jsonl), oldest first."""
        return read_records(self.run_dir / EVENTS_FILE)

    def close(self) -> None:
        """Stop for good: let go of the Trainer (its lock) and remove the folder. Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            try:
                self.trainer.close()
            finally:
                self._folder.cleanup()

    def _check_open(self) -> None:
        if self.closed:
            raise GanforgeError("this page's training was closed: press Reset to start another")


class LabSessions:
    """The Labs of a server's page sessions, one per session (keyed by Gradio's session hash):
    at most `limit` at once, each closed when its page goes away (`close`), when it has been
    idle for `idle_seconds`, or when the server stops (`close_all`)."""

    def __init__(self, limit: int = MAX_LABS, idle_seconds: float = IDLE_SECONDS):
        self.limit, self.idle_seconds = limit, idle_seconds
        self._labs: dict[str, Lab | _Building] = {}
        self._lock = threading.Lock()

    def get(self, session: str) -> Lab | None:
        """The session's Lab, if it has one still open."""
        self._close_idle()
        with self._lock:
            lab = self._labs.get(session)
        return lab if isinstance(lab, Lab) else None

    def start(self, session: str, settings: LabSettings) -> Lab:
        """A new Lab for the session, in place of its previous one."""
        self.close(session)
        self._close_idle()
        settings.check()
        with self._lock:
            if len(self._labs) >= self.limit:
                raise GanforgeError(
                    f"lab: {len(self._labs)} trainings are running on this server (at most "
                    f"{self.limit}, one per open page); close another page's Lab or try later"
                )
            place = self._labs[session] = _Building()  # taken while the Trainer is built
        try:
            lab = Lab(settings)
        except BaseException:
            with self._lock:
                if self._labs.get(session) is place:
                    del self._labs[session]
            raise
        with self._lock:
            still_open = self._labs.get(session) is place
            if still_open:
                self._labs[session] = lab
        if not still_open:  # the page went away meanwhile
            lab.close()
            raise GanforgeError("lab: the page was closed while its training was being built")
        return lab

    def close(self, session: str) -> None:
        with self._lock:
            lab = self._labs.pop(session, None)
        if lab is not None:
            lab.close()

    def close_all(self) -> None:
        with self._lock:
            labs, self._labs = list(self._labs.values()), {}
        for lab in labs:
            lab.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._labs)

    def _close_idle(self) -> None:
        now = time.monotonic()
        with self._lock:
            idle = [
                session
                for session, lab in self._labs.items()
                if now - lab.touched > self.idle_seconds
            ]
        for session in idle:
            self.close(session)


class _Building:
    """A session's place among the Labs while its Trainer is built (a second or so)."""

    touched = math.inf  # never idle

    def close(self) -> None:
        pass
