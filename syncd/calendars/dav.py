"""WebDAV and CalDAV XML, pure: the request bodies the `caldav` kind sends and the
multistatus answers it reads (RFC 4918, RFC 4791, RFC 6578).

Answers are read with the standard library's ElementTree: expat (2.4.1 and later) caps
entity expansion, and ElementTree never fetches external entities.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from syncd.errors import Malformed

DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"
_PROLOG = '<?xml version="1.0" encoding="utf-8"?>'
_STATUS = re.compile(r"\s(\d{3})(?:\s|$)")


@dataclass(frozen=True)
class Member:
    """One `response` of a multistatus: an href, its status, and what its props held."""

    href: str
    status: int  # the response's own status, else 200 when a propstat succeeded
    etag: str = ""
    data: str | None = None  # CALDAV:calendar-data


@dataclass(frozen=True)
class Multistatus:
    """A parsed 207 answer: its members and the collection's sync-token, if it gave one."""

    members: tuple[Member, ...]
    sync_token: str = ""


def propfind_etags() -> bytes:
    """PROPFIND body: every member's ETag, and the collection's sync-token (RFC 6578 4)."""
    return _xml(
        '<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/><d:sync-token/></d:prop></d:propfind>'
    )


def sync_collection(token: str) -> bytes:
    """REPORT body: the members changed or removed since `token` (RFC 6578 3.2)."""
    return _xml(
        '<d:sync-collection xmlns:d="DAV:">'
        f"<d:sync-token>{escape(token)}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


def multiget(hrefs: Iterable[str]) -> bytes:
    """REPORT body: the ETags and bodies of the given members (RFC 4791 7.9)."""
    listed = "".join(f"<d:href>{escape(href)}</d:href>" for href in hrefs)
    return _xml(
        '<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
        f"<d:prop><d:getetag/><c:calendar-data/></d:prop>{listed}</c:calendar-multiget>"
    )


def parse_multistatus(text: str, where: str) -> Multistatus:
    """A multistatus answer; `Malformed` when the body is not one (an HTML page, a
    truncated answer)."""
    root = _parse(text, where)
    if root is None or root.tag != DAV + "multistatus":
        raise Malformed(f"{where}: the answer is not a WebDAV multistatus")
    members = tuple(_member(response) for response in root.iter(DAV + "response"))
    # top level in a sync-collection answer (RFC 6578 3.2), a prop of the collection in
    # a PROPFIND (RFC 6578 4)
    tokens = (t.text.strip() for t in root.iter(DAV + "sync-token") if t.text)
    return Multistatus(members, next((t for t in tokens if t), ""))


def error_condition(text: str) -> str:
    """The precondition a `DAV:error` body names (`no-uid-conflict`), or ""."""
    root = _parse(text, "")
    if root is None or root.tag != DAV + "error" or len(root) == 0:
        return ""
    return root[0].tag.rpartition("}")[2]


def status_code(line: str | None) -> int:
    """The code of a status line (`HTTP/1.1 404 Not Found`), 0 when there is none."""
    found = _STATUS.search(f" {line or ''}")
    return int(found.group(1)) if found else 0


def _member(response: ElementTree.Element) -> Member:
    href = (response.findtext(DAV + "href") or "").strip()
    own = response.find(DAV + "status")
    if own is not None:  # a removed member (RFC 6578 3.5.2) or a refused href
        return Member(href, status_code(own.text))
    for propstat in response.iter(DAV + "propstat"):
        if 200 <= status_code(propstat.findtext(DAV + "status")) < 300:
            etag = propstat.findtext(f"{DAV}prop/{DAV}getetag") or ""
            data = propstat.findtext(f"{DAV}prop/{CALDAV}calendar-data")
            return Member(href, 200, etag.strip(), data)
    first = response.find(DAV + "propstat")
    return Member(href, status_code(first.findtext(DAV + "status")) if first is not None else 0)


def _parse(text: str, where: str) -> ElementTree.Element | None:
    try:
        return ElementTree.fromstring(text) if text.strip() else None
    except ElementTree.ParseError as exc:
        if not where:
            return None
        raise Malformed(f"{where}: the answer is not well-formed XML ({exc})") from None


def _xml(body: str) -> bytes:
    return (_PROLOG + body).encode()
