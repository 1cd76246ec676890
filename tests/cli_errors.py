"""What every CLI test of bad input asserts: one line on stderr, `ganforge: error: ...`, naming
what it must name, and no traceback."""

from __future__ import annotations


def assert_one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err
    assert err.startswith("ganforge: error: "), err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)
    return err
