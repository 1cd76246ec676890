"""Mutation testing by hand-listed mutants: does the suite notice a single-point bug?

Each mutant in `tools/mutants.toml` names a file, a snippet that occurs exactly once in it, its
replacement (the bug), and the fast tests that should notice. For each mutant this script copies
`src/` to a scratch folder once, applies the bug there (never to the working tree), runs those
tests against the copy (PYTHONPATH puts it ahead of the installed package, subprocesses
included) and reports the mutant killed (a test failed) or SURVIVED. A baseline run of the same
tests on the unmutated copy comes first: a test that already fails would kill every mutant.

    python tools/mutate.py                 # every mutant; exit status 1 if any survives
    python tools/mutate.py --only ID ...   # some of them
    python tools/mutate.py --list          # the list, nothing run
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
MUTANTS_FILE = Path(__file__).with_name("mutants.toml")


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str  # relative to the repository root, under src/
    find: str
    replace: str
    tests: tuple[str, ...]
    why: str = ""


def load_mutants(path: Path = MUTANTS_FILE) -> list[Mutant]:
    entries = tomllib.loads(path.read_text())["mutant"]
    mutants = [
        Mutant(
            id=entry["id"],
            file=entry["file"],
            find=entry["find"],
            replace=entry["replace"],
            tests=tuple(entry["tests"]),
            why=entry.get("why", ""),
        )
        for entry in entries
    ]
    ids = [mutant.id for mutant in mutants]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise SystemExit(f"{path}: duplicate mutant ids {duplicated}")
    return mutants


def problems(mutant: Mutant, root: Path = ROOT) -> list[str]:
    """Why a mutant cannot be applied as written (a stale snippet after a refactor), if so."""
    found = []
    source = root / mutant.file
    if not mutant.file.startswith("src/") or not source.is_file():
        return [f"{mutant.id}: {mutant.file} is not a file under src/"]
    count = source.read_text().count(mutant.find)
    if count != 1:
        found.append(f"{mutant.id}: its snippet occurs {count} times in {mutant.file}, not once")
    if mutant.find == mutant.replace:
        found.append(f"{mutant.id}: the replacement equals the snippet")
    for test in mutant.tests:
        if not (root / test.split("::")[0]).is_file():
            found.append(f"{mutant.id}: no test file {test}")
    return found


def run_tests(src: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, str]:
    """pytest on `tests` against the package in `src`: (exit status, output)."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    env.pop("GANFORGE_STRICT_SKIPS", None)
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    return done.returncode, done.stdout + done.stderr


def killer(output: str) -> str:
    """The first test that failed, from pytest's short summary."""
    match = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    return match.group(1) if match else "(no test named: see the output)"


def mutate(mutants: list[Mutant], timeout: float) -> int:
    stale = [line for mutant in mutants for line in problems(mutant)]
    if stale:
        print("\n".join(stale))
        return 2
    with tempfile.TemporaryDirectory(prefix="ganforge-mutants-") as scratch:
        src = Path(scratch) / "src"
        shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
        tests = tuple(dict.fromkeys(test for mutant in mutants for test in mutant.tests))
        print(f"baseline: {len(tests)} test selections on the unmutated copy ...", flush=True)
        status, output = run_tests(src, tests, timeout * 4)
        if status != 0:
            print(output[-3000:])
            print("baseline FAILED: fix the tests before judging mutants")
            return 2
        survivors = []
        for number, mutant in enumerate(mutants, 1):
            path = src / Path(mutant.file).relative_to("src")
            original = path.read_text()
            path.write_text(original.replace(mutant.find, mutant.replace))
            started = time.monotonic()
            try:
                status, output = run_tests(src, mutant.tests, timeout)
            finally:
                path.write_text(original)
            seconds = time.monotonic() - started
            if status == 0:
                survivors.append(mutant)
                verdict = "SURVIVED"
            elif status == -1:
                verdict = "killed (timeout)"
            else:
                verdict = f"killed by {killer(output)}"
            print(f"[{number}/{len(mutants)}] {mutant.id}: {verdict} ({seconds:.0f} s)", flush=True)
    print(f"{len(mutants)} mutants, {len(mutants) - len(survivors)} killed, "
          f"{len(survivors)} survived" + (": " + ", ".join(m.id for m in survivors) if survivors else ""))
    return 1 if survivors else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run these mutants only")
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutant")
    args = parser.parse_args(argv)
    mutants = load_mutants()
    if args.only:
        unknown = sorted(set(args.only) - {m.id for m in mutants})
        if unknown:
            parser.error(f"--only: unknown mutant ids {unknown}")
        mutants = [m for m in mutants if m.id in args.only]
    if args.list:
        for mutant in mutants:
            print(f"{mutant.id:40} {mutant.file}  -> {' '.join(mutant.tests)}")
        return 0
    return mutate(mutants, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
