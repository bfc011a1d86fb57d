"""The live progress lines of ``nbflow run``, drawn into a buffer with a hand-driven clock."""

from __future__ import annotations

import io

from nbflow.cli import Progress, clean, duration


def run(counts: dict[str, int], state: str = "running", flow: str = "etl",
        run_id: str = "r1") -> dict:
    return {"id": run_id, "flow": flow, "state": state, "counts": counts}


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_without_a_terminal_a_changed_run_prints_at_most_once_a_second():
    out, now = io.StringIO(), Clock()
    p = Progress(out, tty=False, now=now)
    p.show([run({"pending": 4})])
    p.show([run({"running": 2, "pending": 2})])          # same instant: held back
    now.t += 0.5
    p.show([run({"succeeded": 1, "running": 2, "pending": 1})])
    p.show([run({"succeeded": 1, "running": 2, "pending": 1})])
    now.t += 0.5
    p.show([run({"succeeded": 1, "running": 2, "pending": 1})])   # a second later: shown
    p.show([run({"succeeded": 1, "running": 2, "pending": 1})])   # unchanged: not again
    assert out.getvalue().splitlines() == [
        "etl r1 [....................] 0/4 running: 4 pending",
        "etl r1 [#####...............] 1/4 running: 1 succeeded, 2 running, 1 pending",
    ]


def test_without_a_terminal_the_end_of_a_run_is_always_printed():
    out, now = io.StringIO(), Clock()
    p = Progress(out, tty=False, now=now)
    p.show([run({"running": 2}), run({"pending": 1}, run_id="r2")])
    p.show([run({"succeeded": 1, "failed": 1}, state="failed"),
            run({"running": 1}, run_id="r2")])
    p.show([run({"succeeded": 1, "failed": 1}, state="failed"),
            run({"succeeded": 1}, state="succeeded", run_id="r2")], final=True)
    assert out.getvalue().splitlines() == [
        "etl r1 [....................] 0/2 running: 2 running",
        "etl r2 [....................] 0/1 running: 1 pending",
        "etl r1 [####################] 2/2 failed: 1 succeeded, 1 failed",
        "etl r2 [####################] 1/1 succeeded: 1 succeeded",
    ]


def test_on_a_terminal_lines_are_redrawn_in_place_and_only_on_change():
    out = io.StringIO()
    p = Progress(out, tty=True, color=False)
    p.show([], note="notebook: starting the kernel")
    p.show([run({"pending": 2})], note="notebook: code cell 1 of 1")
    p.show([run({"pending": 2})], note="notebook: code cell 1 of 1")
    p.show([run({"succeeded": 2}, state="succeeded")], final=True)
    frames = out.getvalue().split("\x1b[J")
    assert frames == [
        "\x1b[2Knotebook: starting the kernel\n",
        "\x1b[1F\x1b[2Ketl r1 [" + "." * 10 + "] 0/2 running: 2 pending\n"
        "\x1b[2Knotebook: code cell 1 of 1\n",
        # the final drawing drops the note; ESC[J erases its old line
        "\x1b[2F\x1b[2Ketl r1 [" + "#" * 10 + "] 2/2 succeeded: 2 succeeded\n",
        "",
    ]


def test_colours_are_used_on_a_terminal_only_and_never_come_from_user_data():
    out = io.StringIO()
    p = Progress(out, tty=True, color=True)
    line = p.line(run({"failed": 1, "succeeded": 1}, flow="evil\x1b[2J\x1b]0;title\x07"))
    assert line.startswith("evil r1 ")   # the OSC goes whole, its title with it
    assert "\x1b[32m1 succeeded\x1b[0m, \x1b[31m1 failed\x1b[0m" in line
    assert "\x1b[2J" not in line
    assert "\x1b" not in Progress(io.StringIO(), tty=False).line(run({"failed": 1}))


def test_clean_keeps_text_and_drops_control_sequences():
    assert clean("ValueError: bad\x1b[31m row\r\n3", one_line=True) == "ValueError: bad row ..."
    assert clean("a\tb\nc") == "a\tb\nc"
    assert clean("x" * 50, limit=10) == "xxxxxxx..."
    assert clean(None) == ""


def test_durations_read_naturally():
    assert [duration(s) for s in (None, 0.012, 12.34, 125, 3725)] == [
        "-", "0.01s", "12.3s", "2m05s", "1h02m"]
