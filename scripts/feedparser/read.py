"""Python's feedparser reading of feed documents, as JSON, for comparison with
`cairn feed check --json` (tests/api/feeds.rs).

    .feedparser-venv/bin/python scripts/feedparser/read.py FILE BASE_URL [CONTENT_TYPE] ...

Takes one or more FILE BASE_URL CONTENT_TYPE triples (BASE_URL is the address the document
was fetched from, for relative links; CONTENT_TYPE may carry a charset) and prints one JSON
object: {FILE: {"bozo": bool, "entries": [{"link", "title", "author", "hashtags"}]}}.

`author` is the name feedparser found (author_detail.name), without any email address.
`hashtags` applies Cairn's hashtag rule (README, "Harvesting") to what feedparser read: the
title, summary (which is also where feedparser puts `media:description`), every content
value, and every tag (categories, `dc:subject`, keywords) by term and label.
"""

import html.parser
import json
import sys

import feedparser


class _Text(html.parser.HTMLParser):
    """Plain text of an HTML fragment: tags dropped (script and style with their content)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []
        self.hidden = False

    def handle_starttag(self, tag, attrs):
        self.hidden = tag in ("script", "style")
        self.parts.append(" ")

    def handle_endtag(self, tag):
        self.hidden = False
        self.parts.append(" ")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def to_text(value, mime):
    if "html" not in (mime or "text/html"):
        return value
    p = _Text()
    p.feed(value)
    p.close()
    return "".join(p.parts)


def _is_tag_char(c):
    return c.isalnum() or c in "-_"


def _valid(tag):
    return tag != "" and all(_is_tag_char(c) for c in tag) and any(c.isalpha() for c in tag)


def extract(text):
    """Every #tag in text, lower-cased: `#` then the longest run of letters, digits, `-`
    and `_`, trailing `-` dropped, with at least one letter; not glued to what comes before
    (a word, a URL, `&`, `#`, `_`, `-`, `=` or `?`)."""
    tags = set()
    i = 0
    n = len(text)
    while True:
        j = text.find("#", i)
        if j < 0:
            break
        before = text[j - 1] if j > 0 else None
        k = j + 1
        while k < n and _is_tag_char(text[k]):
            k += 1
        run = text[j + 1 : k]
        glued = before is not None and (before.isalnum() or before in "/&#_-=?")
        if not glued and run:
            tag = run.rstrip("-").lower()
            if _valid(tag):
                tags.add("#" + tag)
        i = k
    return tags


def category_tag(term):
    """A category counts as a hashtag when it is one whole tag, with or without its `#`."""
    t = (term or "").strip()
    if t.startswith("#"):
        t = t[1:]
    t = t.lower()
    return "#" + t if _valid(t) else None


def read(path, base, content_type):
    with open(path, "rb") as f:
        data = f.read()
    headers = {"content-location": base, "content-type": content_type}
    d = feedparser.parse(data, response_headers=headers)
    entries = []
    for e in d.entries:
        texts = []
        title = None
        if "title" in e:
            title = " ".join(to_text(e.title, e.get("title_detail", {}).get("type")).split()) or None
            texts.append(title or "")
        if "summary" in e:
            texts.append(to_text(e.summary, e.get("summary_detail", {}).get("type")))
        for c in e.get("content", []):
            texts.append(to_text(c.get("value", ""), c.get("type")))
        tags = extract("\n".join(texts))
        for t in e.get("tags", []):
            for v in (t.get("term"), t.get("label")):
                tag = category_tag(v)
                if tag:
                    tags.add(tag)
        author = e.get("author_detail", {}).get("name") or None
        entries.append(
            {
                "link": e.get("link") or None,
                "title": title,
                "author": " ".join(author.split()) if author else None,
                "hashtags": sorted(tags),
            }
        )
    return {"bozo": bool(d.bozo), "entries": entries}


def main(argv):
    if len(argv) < 3 or len(argv) % 3 != 0:
        print(__doc__, file=sys.stderr)
        return 2
    out = {}
    for i in range(0, len(argv), 3):
        out[argv[i]] = read(argv[i], argv[i + 1], argv[i + 2])
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
