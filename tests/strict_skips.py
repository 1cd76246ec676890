"""A pytest plugin for CI: with GANFORGE_STRICT_SKIPS=1 a skipped test fails the run.

The tests that need Chromium, Debian's Fashion-MNIST files or the reference Inception weights
skip themselves where those are missing, which is right on a laptop and wrong in CI: there a
failed install would make them vanish unseen. `.ci/run` sets the variable; the run then ends
with a failure listing every skip and its reason (collection-time skips included).
"""

from __future__ import annotations

import os

import pytest

STRICT = "GANFORGE_STRICT_SKIPS"


def _strict(config: pytest.Config) -> bool:
    return os.environ.get(STRICT, "") not in ("", "0")


def _skips(session_or_config) -> list:
    reporter = session_or_config.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return []
    return [
        report for report in reporter.stats.get("skipped", []) if not hasattr(report, "wasxfail")
    ]


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: reason")
        return f"{longrepr[0]}:{longrepr[1]}: {longrepr[2]}"
    return f"{report.nodeid}: {longrepr}"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _strict(session.config) and _skips(session) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skips = _skips(terminalreporter)
    if not (_strict(config) and skips):
        return
    terminalreporter.section(f"{STRICT}: skipped tests fail this run", red=True)
    for report in skips:
        terminalreporter.line(f"SKIPPED -> FAILED  {_reason(report)}", red=True)
