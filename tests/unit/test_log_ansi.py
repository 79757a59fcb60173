"""Log lines as HTML: escaped first, ANSI SGR styles as classes, other escapes dropped."""

from __future__ import annotations

from labyard.jobs.ansi import ansi_html, log_lines


def test_text_is_escaped_and_sgr_becomes_classes() -> None:
    html = ansi_html('\x1b[1;32m<script>x</script>\x1b[22m & \x1b[0m"q"')
    assert str(html) == (
        '<span class="ansi-fg-2 ansi-bold">&lt;script&gt;x&lt;/script&gt;</span>'
        '<span class="ansi-fg-2"> &amp; </span>"q"'
    )


def test_other_escapes_controls_and_redraws_are_dropped() -> None:
    assert str(ansi_html("a\x1b]0;title\x07b\x1b[2Kc\x07\x00")) == "abc"
    assert str(ansi_html("10%\r50%\r100%")) == "100%"
    assert str(ansi_html("\x1b[38;5;9mred\x1b[38;2;1;2;3m still\x1b[0m")) == (
        '<span class="ansi-fg-9">red</span><span class="ansi-fg-9"> still</span>'
    )


def test_log_lines_split_the_stamp() -> None:
    (line,) = log_lines(["2024-05-01T10:20:30.5Z \x1b[31mHello <World>\x1b[0m"])
    assert (line.time, line.stamp) == ("10:20:30", "2024-05-01T10:20:30.5Z")
    assert line.text == "hello <world>"
    assert str(line.html) == '<span class="ansi-fg-1">Hello &lt;World&gt;</span>'
    assert log_lines(["no stamp"])[0].time == ""
