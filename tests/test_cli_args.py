"""Bad numbers on the command line get one line from argparse, like bad numbers in the config:
``mjbot demo --port 99999`` printed an OverflowError traceback, and ``mjbot sim --time-scale
nan`` started and then failed every submit (the simulator's clock turned NaN into a
ValueError)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness import ROOT


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["demo", "--port", "99999"], "--port"),
        (["demo", "--port", "-1"], "--port"),
        (["sim", "--port", "70000"], "--port"),
        (["sim", "--time-scale", "nan"], "--time-scale"),
        (["sim", "--time-scale", "inf"], "--time-scale"),
        (["sim", "--time-scale", "-1"], "--time-scale"),
        (["sim", "--time-scale", "0"], "--time-scale"),
    ],
)
def test_a_bad_number_on_the_command_line_is_one_line(args: list[str], option: str) -> None:
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bot.cli",
                *args,
                *(["--port", "0"] if "sim" in args and "--port" not in args else []),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"mjbot {' '.join(args)} started") from None
    assert done.returncode == 2, (done.returncode, done.stderr[-500:])
    assert "Traceback" not in done.stderr
    assert f"argument {option}" in done.stderr.strip().splitlines()[-1]
