"""The command line's parsing: every command of DESIGN.md section 4 that exists, and
`-c` before or after the command."""

from __future__ import annotations

import pytest

from syncd.cli import parser


@pytest.mark.parametrize(
    "argv",
    [
        ["-c", "x.yaml", "sync", "a", "b"],
        ["sync", "-c", "x.yaml"],
        ["plan", "--json", "-c", "x.yaml"],
        ["status", "r"],
        ["check-config"],
        ["release", "r"],
        ["retry", "r"],
        ["reset", "r"],
        ["resync", "--full"],
        ["simulate", "salesask", "--port", "9000"],
        ["demo", "--once", "--dir", "/tmp/x"],
    ],
)
def test_every_command_parses(argv):
    args = parser().parse_args(argv)
    assert args.command == next(a for a in argv if not a.startswith("-") and a != "x.yaml")


def test_config_option_works_before_and_after_the_command():
    assert parser().parse_args(["-c", "a.yaml", "sync"]).config == "a.yaml"
    assert parser().parse_args(["sync", "-c", "b.yaml"]).config == "b.yaml"


def test_simulate_takes_a_port():
    assert parser().parse_args(["simulate", "salesask", "--port", "9000"]).port == 9000


def test_an_unknown_command_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["frobnicate"])
    assert exit_info.value.code == 2
