"""`ganforge app`: its options, and one-line errors when Gradio is missing or RUNS_DIR is not a
folder."""

from __future__ import annotations

import sys

import pytest

from ganforge.cli import build_parser, main


def test_defaults_are_runs_and_this_machine_only():
    args = build_parser().parse_args(["app"])
    assert (args.runs_dir, args.host, args.port) == ("runs", "127.0.0.1", None)
    args = build_parser().parse_args(["app", "elsewhere", "--host", "0.0.0.0", "--port", "8000"])
    assert (args.runs_dir, args.host, args.port) == ("elsewhere", "0.0.0.0", 8000)


def test_without_gradio_the_error_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    monkeypatch.delitem(sys.modules, "ganforge.app.page", raising=False)
    assert main(["app", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'ganforge[app]'" in err and "Traceback" not in err


def test_runs_dir_must_be_a_folder(capsys, tmp_path):
    pytest.importorskip("gradio", reason="the app extra (gradio) is not installed")
    assert main(["app", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
