"""Log lines as HTML: escaped first, ANSI SGR styles as classes, other escapes dropped."""

from __future__ import annotations

from labyard.jobs.ansi import ansi_html, lines_html, log_lines


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


def test_a_line_renders_as_the_log_box_div_everywhere() -> None:
    raw = "2024-05-01T10:20:30.5Z \x1b[31mHi <b>'x'</b>\x1b[0m"
    (line,) = log_lines([raw])
    assert str(line.div()) == (
        '<div class="ll" data-text="hi &lt;b&gt;&#39;x&#39;&lt;/b&gt;">'
        '<span class="ts" title="2024-05-01T10:20:30.5Z">10:20:30</span>'
        "<span><span class=\"ansi-fg-1\">Hi &lt;b&gt;'x'&lt;/b&gt;</span></span></div>"
    )
    # the live stream's HTML is the same renderer, line after line
    assert lines_html([raw, "no stamp"]) == str(line.div()) + (
        '<div class="ll" data-text="no stamp"><span>no stamp</span></div>'
    )
