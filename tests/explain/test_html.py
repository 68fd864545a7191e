"""``bpfkit explain --format html``: one self-contained page, opened by headless Chromium."""

from __future__ import annotations

import html.parser
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from bpfkit.cli.main import main
from bpfkit.explain.explain import explain_object
from bpfkit.explain.html import HELPERS_MAN, render_html
from bpfkit.obj.reader import read_object
from helpers import ROOT, TESTS

HELLO = ROOT / "examples" / "hello" / "hello.o"
SUBPROGS = TESTS / "corpus" / "obj" / "subprogs_v4_g.o"
XDP = TESTS / "corpus" / "obj" / "xdp_count_v3_g.o"

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--enable-logging=stderr",
    "--v=0",
]


def _chromium(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.iterdir()))}"  # a fresh --user-data-dir each run
    return subprocess.run(
        ["chromium", *_FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _console(stderr: str) -> list[str]:
    """The page's console messages (errors, uncaught exceptions, logs) Chromium logged."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit truecolour PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    height = channels = 0
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, channels, rows


def _inked(png: bytes) -> tuple[float, int]:
    """Share of pixels that are not white, and how many distinct colours there are."""
    width, channels, rows = _pixels(png)
    inked = 0
    colours: set[bytes] = set()
    for row in rows[::4]:
        for x in range(0, width * channels, channels * 2):
            px = row[x : x + 3]
            colours.add(px)
            inked += px != b"\xff\xff\xff"
    total = len(rows[::4]) * len(range(0, width * channels, channels * 2))
    return inked / total, len(colours)


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _parse(dom: str) -> _Text:
    p = _Text()
    p.feed(dom)
    return p


def _page(obj: Path, tmp: Path) -> Path:
    out = tmp / (obj.stem + ".html")
    text = subprocess.run(
        [sys.executable, "-m", "bpfkit", "explain", "--format", "html", str(obj)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    out.write_text(text)
    return out


@pytest.mark.requires("chromium", "graphviz")
@pytest.mark.parametrize("obj", [HELLO, SUBPROGS], ids=["hello", "subprogs"])
def test_chromium_opens_the_page(obj: Path, tmp_path: Path) -> None:
    page = _page(obj, tmp_path)
    shot = tmp_path / "shot.png"
    run = _chromium(page, tmp_path, "--window-size=1000,1200", f"--screenshot={shot}")
    assert _console(run.stderr) == []
    inked, colours = _inked(shot.read_bytes())
    assert inked > 0.03 and colours > 20, (inked, colours)  # text, tables and a graph
    dom = _chromium(page, tmp_path, "--dump-dom")
    assert _console(dom.stderr) == []
    parsed = _parse(dom.stdout)
    x = explain_object(read_object(obj))
    rows = [a for t, a in parsed.tags if t == "tr" and "insn" in (a.get("class") or "")]
    assert len(rows) == sum(len(p.instructions) for p in x.programs)
    assert sum(t == "svg" for t, _ in parsed.tags) == len(x.programs)
    nodes = [a for t, a in parsed.tags if t == "g" and a.get("class") == "node"]
    assert nodes, "the graph has no blocks"
    text = "".join(parsed.parts)
    for p in x.programs:
        for e in p.instructions:
            assert e.llvm in text
    if obj == HELLO:
        # The seed's facts: the bytes of "om rust\n" and what the helper is called with.
        assert 'the bytes 6f 6d 20 72 75 73 74 0a, the text "om rust\\n"' in text
        assert 'bpf_trace_printk(fmt = fp-32 "hello from rust\\n", fmt_size = 17)' in text
        links = [a["href"] for t, a in parsed.tags if t == "a" and a.get("class") == "helper"]
        assert links == [HELPERS_MAN]
    else:
        assert "for (int i = 0; i < n && i < 64; i++)" in text  # source beside instructions


@pytest.mark.requires("chromium")
def test_a_console_error_is_seen(tmp_path: Path) -> None:
    """The console check can fail: a page that throws is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><p>x</p><script>undefined_function();</script></body></html>")
    run = _chromium(page, tmp_path, "--dump-dom")
    assert any("undefined_function is not defined" in line for line in _console(run.stderr))


@pytest.mark.requires("chromium")
def test_a_blank_page_is_seen_as_blank(tmp_path: Path) -> None:
    page = tmp_path / "blank.html"
    page.write_text("<html><body></body></html>")
    shot = tmp_path / "blank.png"
    _chromium(page, tmp_path, "--window-size=800,600", f"--screenshot={shot}")
    inked, colours = _inked(shot.read_bytes())
    assert inked == 0 and colours == 1


def test_page_is_self_contained_and_lists_maps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--format", "html", str(XDP)]) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!DOCTYPE html>")
    parsed = _parse(page)
    assert not [t for t, a in parsed.tags if t in ("script", "link", "img", "iframe")]
    assert not [a for _, a in parsed.tags if "src" in a]
    hrefs = {a["href"] for t, a in parsed.tags if t == "a"}
    assert all(h == HELPERS_MAN or (h or "").startswith("#") for h in hrefs)
    text = "".join(parsed.parts)
    obj = read_object(XDP)
    for m in obj.maps:
        assert m.name in text
    assert "BPF_MAP_TYPE_" in text


def test_text_is_escaped() -> None:
    x = explain_object(read_object(SUBPROGS))
    page = render_html(x, graph=False)
    assert "r1 s/= 3" in page
    assert "i &lt; n &amp;&amp; i &lt; 64" in page  # the source line, escaped
    assert "<svg" not in page


def test_repr_html_for_objects_programs_maps_and_explanations() -> None:
    obj = read_object(XDP)
    for shown in (obj._repr_html_(), explain_object(obj)._repr_html_()):
        assert shown.startswith('<div class="bpfkit">') and "<!DOCTYPE" not in shown
        assert 'class="insn"' in shown and obj.maps[0].name in shown
    prog = obj.programs[0]._repr_html_()
    assert f"prog-{obj.programs[0].name}" in prog
    m = obj.maps[0]._repr_html_()
    assert m.startswith('<div class="bpfkit"><table>') and "BPF_MAP_TYPE_" in m
