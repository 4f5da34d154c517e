#!/usr/bin/env python3
"""Checks the relative links of the repository's Markdown files.

Every relative link (inline, reference definition, or HTML `href`/`src`)
must name a file or directory that exists, and every `#anchor` (in the same
file, or `file.md#anchor`) must name a heading of the target file, by
GitHub's rules: the heading's text in lower case, spaces turned into '-',
punctuation other than '-' and '_' removed, and a repeated heading suffixed
with -1, -2, ... (explicit `id=`/`name=` anchors of HTML tags count too).
Links with a scheme (https:, mailto:, ...) are not checked; nor are links
inside code blocks and code spans.

Usage: scripts/check_links.py [FILE.md ...]
(default: README.md, CHANGELOG.md and docs/*.md of the repository)

Exits 1 with one line per broken link (file:line, the link, why).
Python 3 standard library only.
"""

import html
import re
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# [text](target "title"): the text may hold one level of brackets (an image
# inside a link); the target may be <bracketed> or hold balanced parentheses.
INLINE = re.compile(
    r"!?\[(?:[^\[\]\\]|\\.|\[[^\[\]]*\])*\]"
    r"\(\s*(<[^<>\n]*>|(?:[^\s()\\]|\\.|\([^\s()]*\))*)"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^()]*\)))?\s*\)"
)
REFERENCE = re.compile(r"^ {0,3}\[((?:[^\[\]\\]|\\.)+)\]:\s*(<[^<>\n]*>|\S+)")
HTML_LINK = re.compile(r"<(?:a|img|source)\b[^>]*?\s(?:href|src)\s*=\s*([\"'])(.*?)\1", re.I)
HTML_ID = re.compile(r"<[a-z][a-z0-9]*\b[^>]*?\s(?:id|name)\s*=\s*([\"'])(.*?)\1", re.I)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")


def blank_code_spans(line):
    """The line with the contents of its code spans blanked out (so that
    no link is found in them), keeping its length."""
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def prose_lines(text):
    """(line number, line) of the lines outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if fence is None:
            if m:
                fence = m.group(1)
                continue
            yield number, line
        elif m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
            if not line.strip().lstrip(fence[0]):
                fence = None


def heading_text(raw):
    """A heading's text as GitHub renders it (the slug's input): links and
    images become their text, code spans their content, HTML tags and
    emphasis markers go, character references are decoded."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", raw)
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\[[^\]]*\]", r"\1", text)
    spans = []

    def keep(m):
        spans.append(m.group(2).strip())
        return f"\x00{len(spans) - 1}\x00"

    text = CODE_SPAN.sub(keep, text)
    text = re.sub(r"<[^>]+>", "", text)
    # Emphasis: `*`/`**` always, `_` only as a delimiter at a word's edge
    # (an underscore inside a word, `snake_case`, is kept, as GitHub keeps it).
    text = text.replace("*", "")
    text = re.sub(r"(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])", "", text)
    text = re.sub(r"\\(.)", r"\1", text)
    text = re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], text)
    return html.unescape(text).strip()


def slug(text):
    """GitHub's anchor for a heading's text (github-slugger): lower case,
    every character that is not a letter, a digit, a mark, a space, '-' or
    '_' removed, each space turned into '-'."""
    kept = []
    for ch in text.lower():
        category = unicodedata.category(ch)
        if ch in "-_" or category[0] in "LNM":
            kept.append(ch)
        elif ch == " ":
            kept.append("-")
    return "".join(kept)


def anchors(path, cache={}):
    """The anchors of a Markdown file: its headings' slugs (repeats
    numbered) and explicit HTML ids."""
    if path in cache:
        return cache[path]
    found = set()
    seen = {}

    def add(text):
        base = slug(text)
        candidate = base
        if base in seen:
            n = seen[base]
            while True:
                n += 1
                candidate = f"{base}-{n}"
                if candidate not in seen:
                    break
            seen[base] = n
        seen.setdefault(candidate, 0)
        found.add(candidate)

    previous = None
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        for m in HTML_ID.finditer(line):
            found.add(m.group(2))
        m = ATX.match(line)
        if m:
            add(heading_text(m.group(2) or ""))
            previous = None
            continue
        m = SETEXT.match(line)
        if (
            m
            and previous is not None
            and previous.strip()
            and not previous.lstrip().startswith(("|", ">", "-", "*", "+"))
            and not (m.group(1)[0] == "-" and len(previous.strip()) == 0)
        ):
            add(heading_text(previous.strip()))
            previous = None
            continue
        previous = line
    cache[path] = found
    return found


def links(text):
    """(line number, link target as written) of a Markdown text."""
    for number, line in prose_lines(text):
        line = blank_code_spans(line)
        m = REFERENCE.match(line)
        if m:
            yield number, m.group(2)
            continue
        for m in INLINE.finditer(line):
            yield number, m.group(1)
        for m in HTML_LINK.finditer(line):
            yield number, html.unescape(m.group(2))


def check(md):
    """The broken links of one Markdown file, as messages."""
    problems = []
    shown = md.relative_to(ROOT) if md.is_relative_to(ROOT) else md
    for number, target in links(md.read_text(encoding="utf-8")):
        target = target.strip()
        if target.startswith("<") and target.endswith(">"):
            target = target[1:-1]
        if not target or SCHEME.match(target) or target.startswith("//"):
            continue
        path_part, _, anchor = target.partition("#")
        path_part = unquote(path_part.split("?", 1)[0])
        where = f"{shown}:{number}: ({target})"
        if path_part:
            base = ROOT if path_part.startswith("/") else md.parent
            dest = (base / path_part.lstrip("/")).resolve()
            if not dest.exists():
                problems.append(f"{where}: no such file {path_part}")
                continue
        else:
            dest = md
        if not anchor:
            continue
        if dest.is_dir() or dest.suffix.lower() not in (".md", ".markdown"):
            problems.append(f"{where}: #{anchor} points into {dest.name}, not a Markdown file")
            continue
        anchor = unquote(anchor)
        known = anchors(dest)
        if anchor not in known:
            hint = ""
            lower = anchor.lower()
            if lower in known:
                hint = f" (the anchor is #{lower}: GitHub's are lower case)"
            else:
                close = [a for a in sorted(known) if lower.replace("-", "") == a.replace("-", "")]
                if close:
                    hint = f" (did you mean #{close[0]}?)"
            name = dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest
            problems.append(f"{where}: no heading #{anchor} in {name}{hint}")
    return problems


def main(argv):
    if argv:
        files = [Path(a).resolve() for a in argv]
    else:
        files = [ROOT / "README.md", ROOT / "CHANGELOG.md"] + sorted((ROOT / "docs").glob("*.md"))
        files = [f for f in files if f.exists()]
    problems = []
    for md in files:
        problems.extend(check(md))
    if problems:
        print(f"{len(problems)} broken link(s):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(f"links: {len(files)} file(s) checked, no broken link")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
