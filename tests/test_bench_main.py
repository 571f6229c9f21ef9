"""``python -m benchmarks``: names pick benchmarks; options after one name reach it."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import main


def test_options_after_one_name_reach_that_benchmark(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["protocol", "--help"])
    assert done.value.code == 0
    assert "--seeds" in capsys.readouterr().out  # bench_protocol's own options


def test_options_without_exactly_one_name_and_unknown_names_are_refused(capsys) -> None:
    assert main(["--seeds", "2"]) == 2
    assert main(["protocol", "service", "--seeds", "2"]) == 2
    assert "one benchmark" in capsys.readouterr().err
    assert main(["no_such_thing"]) == 2
    assert "no benchmark named 'bench_no_such_thing'" in capsys.readouterr().err
