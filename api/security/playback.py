"""Signed, path-scoped playback tokens and the manifest rewriting that carries them.

A viewer who may watch a match gets one token for the folder of its published package
(``orgs/{org}/matches/{match}/{revision}/hls/``: HLS and DASH manifests, segments, thumbnails,
poster, the panorama's stream), or of one re-rendered view of it (``.../hls/views/{view}/``).
The token travels in the URL path (``/delivery/{token}/{key}``), so players and CDNs need no
header and no cookie, and every manifest served through the delivery route is rewritten so
that each URL in it carries the token too: HLS playlists (`rewrite_playlist`), DASH MPDs
(`rewrite_dash_manifest`) and the thumbnails' WebVTT index (`rewrite_vtt`).

Token format: ``{payload}.{signature}``, both base64url without padding. The payload is the
UTF-8 text ``version \\n prefix \\n expires_at \\n subject``; the signature is HMAC-SHA256 over
the payload *as transmitted* (its base64url text), so two different token strings never
verify to the same grant. The HMAC key is derived from the server secret with a purpose
label: the raw secret signs object URLs (`polyvision.storage.objects.signing`), and a
signature made for one purpose must be useless for the other.

Everything here is pure: the caller passes the secret and the clock.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote, unquote, urlsplit
from xml.dom import minidom
from xml.parsers.expat import ExpatError

from activities.encode.contracts import view_hls_folder
from api.security.signed_tokens import InvalidSignedToken, derive_key, seal, unseal
from polyvision.artifacts import HLS_STAGE, artifact_key
from polyvision.storage.objects import InvalidObjectKey, validate_key

PLAYBACK_TOKEN_LIFETIME = timedelta(hours=4)
"""How long a playback URL works: a whole match with pauses, short enough to limit sharing."""

TOKEN_VERSION = "1"

DELIVERY_PATH = "/delivery"

# The purpose label of the derived key; bump it together with TOKEN_VERSION if the message
# format ever changes, so that old and new tokens can never be confused.
_KEY_LABEL = b"polyvision/playback-token/v1"

# Tokens are short (a prefix of ~100 characters); anything far longer is garbage, refused
# before any decoding or HMAC work.
_MAX_TOKEN_CHARS = 2048
_DIGITS = re.compile(r"[0-9]{1,12}")
_URI_ATTRIBUTE = re.compile(r'(?<=[:,])URI="([^"]*)"')


class InvalidPlaybackToken(ValueError):
    """A playback token is malformed, tampered with or signed with another key."""


class ExpiredPlaybackToken(InvalidPlaybackToken):
    """A playback token that was valid but whose lifetime has passed."""


class PlaylistError(ValueError):
    """A manifest (HLS playlist, DASH MPD, WebVTT index) names something that cannot be served
    through the token's scope, or cannot be read."""


@dataclass(frozen=True)
class PlaybackGrant:
    """What a verified token allows.

    Attributes:
        prefix: Object-key prefix (ending in ``/``) every delivered key must start with.
        expires_at: Unix time (seconds) from which the token is refused.
        subject: Who it was issued to (a user id), for the logs; not checked on delivery.
    """

    prefix: str
    expires_at: int
    subject: str


def playback_prefix(organization_id: str, match_id: str, revision: int, view: str = "") -> str:
    """The key prefix of one revision's HLS rendition, ending in ``/``.

    With ``view``, the folder of that re-rendered view (``hls/views/{view}/``): inside the
    revision's, so its grant is narrower, never wider.
    """
    if view:
        return view_hls_folder(organization_id, match_id, revision, view)
    return artifact_key(organization_id, match_id, revision, HLS_STAGE, "")


def derive_playback_key(secret: bytes) -> bytes:
    """The HMAC key for playback tokens: the server secret bound to this one purpose."""
    return derive_key(secret, _KEY_LABEL)


def create_token(secret: bytes, prefix: str, subject: str, expires_at: int) -> str:
    """A token that allows reading keys under ``prefix`` until ``expires_at``.

    Args:
        secret: The server secret (``settings.secret``); the signing key is derived from it.
        prefix: A valid key prefix ending in ``/`` (a folder, never a partial name).
        subject: Who the token is for, e.g. a user id; no line breaks.
        expires_at: Unix time (seconds) from which the token is refused.

    Returns:
        The URL-path-safe token.

    Raises:
        ValueError: ``prefix`` is not a folder prefix or ``subject`` is empty or multi-line.
    """
    _check_prefix(prefix)
    if not subject or "\n" in subject:
        raise ValueError("subject must be one non-empty line")
    return seal(derive_playback_key(secret), [TOKEN_VERSION, prefix, str(int(expires_at)), subject])


def verify_token(secret: bytes, token: str, now: float) -> PlaybackGrant:
    """Check a token's signature, format and expiry.

    The signature is checked first (in constant time), so nothing in an unsigned payload is
    trusted, not even its expiry.

    Args:
        secret: The server secret the token was created with.
        token: The token from the URL.
        now: The current unix time.

    Returns:
        The grant the token carries.

    Raises:
        ExpiredPlaybackToken: Authentic, but ``now`` is at or past its expiry.
        InvalidPlaybackToken: Anything else wrong with it.
    """
    grant = _authentic_grant(secret, token)
    if now >= grant.expires_at:
        raise ExpiredPlaybackToken("token has expired")
    return grant


@functools.lru_cache(maxsize=4096)
def _authentic_grant(secret: bytes, token: str) -> PlaybackGrant:
    """The grant an authentic token carries, whatever the time.

    Remembered per token string: a player sends the same token with every playlist and
    segment it fetches, and what a given string grants never changes (only its expiry, which
    `verify_token` compares with the clock on every call). A token that fails is not
    remembered: it raises again, after the same checks, every time it is presented.
    """
    try:
        fields = unseal(derive_playback_key(secret), token, max_chars=_MAX_TOKEN_CHARS)
    except InvalidSignedToken as exc:
        raise InvalidPlaybackToken(str(exc)) from exc
    return _grant(fields)


def key_in_scope(prefix: str, key: str) -> bool:
    """Whether ``key`` is a valid object key strictly inside the folder ``prefix``.

    ``prefix`` ends with ``/``, so ``.../hls/`` never matches ``.../hls-other/x``; ``..``, ``.``,
    empty segments, absolute keys and control characters are refused by the key rules (checked
    last, as the dearest), so no spelling of a key can step outside the folder.
    """
    return (
        prefix.endswith("/")
        and key.startswith(prefix)
        and len(key) > len(prefix)
        and _valid_key(key)
    )


@functools.lru_cache(maxsize=16384)
def _valid_key(key: str) -> bool:
    """Whether ``key`` passes the object-key rules; remembered, since the same segment and
    playlist keys come back with every viewer (and every URI of a playlist on every fetch)."""
    try:
        validate_key(key)
    except InvalidObjectKey:
        return False
    return True


def delivery_url(base_url: str, token: str, key: str) -> str:
    """The absolute delivery URL of ``key`` under ``token``."""
    return f"{base_url.rstrip('/')}{DELIVERY_PATH}/{token}/{quote(key, safe='/')}"


def resolve_reference(playlist_key: str, uri: str) -> str:
    """The object key a playlist's URI names, resolved against the playlist's own key.

    Only relative references are accepted: an absolute URL or a host-relative path in one of
    our playlists would escape the token (and make the player fetch from elsewhere), which
    our packager never writes, so it is treated as an error rather than passed through.

    Raises:
        PlaylistError: The URI is absolute, empty, or climbs above the store's root.
    """
    parts = urlsplit(uri)
    if parts.scheme or parts.netloc or parts.path.startswith("/"):
        raise PlaylistError(f"playlist {playlist_key!r} names an absolute URI: {uri!r}")
    if not parts.path:
        raise PlaylistError(f"playlist {playlist_key!r} names an empty URI")
    segments = playlist_key.split("/")[:-1]
    for segment in unquote(parts.path).split("/"):
        if segment == "..":
            if not segments:
                raise PlaylistError(f"playlist {playlist_key!r}: {uri!r} climbs above the root")
            segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    return "/".join(segments)


def rewrite_playlist(text: str, playlist_key: str, prefix: str, base_url: str, token: str) -> str:
    """Point every URI of an HLS playlist at the delivery route under ``token``.

    URI lines (segments, variant playlists) and every ``URI="..."`` attribute (``EXT-X-MAP``,
    ``EXT-X-MEDIA``, ``EXT-X-I-FRAME-STREAM-INF``, ``EXT-X-KEY`` ...) are resolved against
    ``playlist_key`` and replaced with absolute delivery URLs; a query string is kept.
    Tags, comments and blank lines are copied unchanged.

    Raises:
        PlaylistError: A URI is absolute or resolves outside ``prefix``.
    """

    def rewrite(uri: str) -> str:
        key = resolve_reference(playlist_key, uri)
        if not key_in_scope(prefix, key):
            raise PlaylistError(f"playlist {playlist_key!r}: {uri!r} is outside {prefix!r}")
        query = urlsplit(uri).query
        url = delivery_url(base_url, token, key)
        return f"{url}?{query}" if query else url

    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            lines.append(line)
        elif stripped.startswith("#"):
            lines.append(_URI_ATTRIBUTE.sub(lambda m: f'URI="{rewrite(m.group(1))}"', line))
        else:
            lines.append(rewrite(stripped))
    return "\n".join(lines) + "\n"


# DASH SegmentTemplate identifiers (ISO/IEC 23009-1 5.3.9.4.4): kept as they are, for the
# player to fill in; ``$$`` is a literal dollar.
_DASH_IDENTIFIER = re.compile(
    r"\$(?:RepresentationID|(?:Number|Bandwidth|Time|SubNumber)(?:%0[0-9]+[diouxX])?)?\$"
)
# Stand-ins for the identifiers while a template is resolved like a path: private-use
# characters, which neither URL parsing nor percent-decoding touch.
_HOLE = re.compile("\ue000([0-9]+)\ue001")
# The URL-valued attributes of MPD elements, by element; SegmentTemplate's are templates.
_DASH_URL_ATTRIBUTES = {
    "SegmentTemplate": ("media", "initialization", "index", "bitstreamSwitching"),
    "SegmentURL": ("media", "index"),
    "Initialization": ("sourceURL",),
    "RepresentationIndex": ("sourceURL",),
    "BitstreamSwitching": ("sourceURL",),
}


def rewrite_dash_manifest(
    text: str, manifest_key: str, prefix: str, base_url: str, token: str
) -> str:
    """Point every URL of a DASH MPD at the delivery route under ``token``.

    ``BaseURL`` elements (at any level) and the URL attributes of ``SegmentTemplate``
    (``media``, ``initialization``, ...), ``SegmentURL`` and the ``sourceURL`` of
    ``Initialization``/``RepresentationIndex`` are resolved as DASH resolves them (against
    the nearest enclosing ``BaseURL``, else the MPD's own key) and replaced with absolute
    delivery URLs. A template's identifiers (``$Number%05d$``, ``$RepresentationID$`` ...)
    are kept for the player to fill in, the rest of it percent-encoded; whatever key the
    player then asks for is checked against the token's scope again on delivery.

    Raises:
        PlaylistError: The MPD is not well-formed XML, or names an absolute URL or anything
            outside ``prefix``.
    """
    try:
        document = minidom.parseString(text)
    except ExpatError as exc:
        raise PlaylistError(f"manifest {manifest_key!r} is not well-formed: {exc}") from exc
    try:
        root = document.documentElement
        if root is None:
            raise PlaylistError(f"manifest {manifest_key!r} has no root element")
        _rewrite_dash_element(document, root, manifest_key, prefix, base_url, token)
        return f'<?xml version="1.0" encoding="UTF-8"?>\n{root.toxml()}\n'
    finally:
        document.unlink()


def rewrite_vtt(text: str, vtt_key: str, prefix: str, base_url: str, token: str) -> str:
    """Point every cue of a thumbnails WebVTT index at the delivery route under ``token``.

    Each cue's payload is an image reference (``thumbnails/sprite-000.jpg#xywh=0,0,160,90``):
    resolved against ``vtt_key`` and replaced with an absolute delivery URL, its fragment
    kept. The header, timing lines, ``NOTE``/``STYLE``/``REGION`` blocks and blank lines are
    copied unchanged.

    Raises:
        PlaylistError: A payload is an absolute URL or resolves outside ``prefix``.
    """
    lines = text.splitlines()
    out: list[str] = []
    in_cue = False
    for line in lines:
        stripped = line.strip()
        if not stripped:
            in_cue = False
            out.append(line)
        elif "-->" in stripped and not in_cue:
            in_cue = True
            out.append(line)
        elif in_cue:
            reference, hash_mark, fragment = stripped.partition("#")
            url = _scoped_url(vtt_key, reference, prefix, base_url, token)
            out.append(url + hash_mark + fragment)
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _rewrite_dash_element(
    document: minidom.Document,
    element: minidom.Element,
    base: str,
    prefix: str,
    base_url: str,
    token: str,
) -> None:
    """Rewrite ``element``'s URLs and its descendants', ``base`` being what they resolve
    against (a key; one ending in ``/`` is a folder)."""
    children = [node for node in element.childNodes if isinstance(node, minidom.Element)]
    own_base = base
    for index, child in enumerate(c for c in children if c.localName == "BaseURL"):
        reference = _element_text(child).strip()
        resolved = _join(base, reference)
        _check_scope(prefix, resolved, base, reference)
        for node in list(child.childNodes):
            child.removeChild(node)
        child.appendChild(document.createTextNode(_url(base_url, token, resolved)))
        if index == 0:  # further BaseURLs are alternatives (other servers) for the same files
            own_base = resolved
    is_template = element.localName == "SegmentTemplate"
    for name in _DASH_URL_ATTRIBUTES.get(element.localName or "", ()):
        if element.hasAttribute(name):
            value = element.getAttribute(name)
            url = _scoped_url(own_base, value, prefix, base_url, token, template=is_template)
            element.setAttribute(name, url)
    for child in children:
        if child.localName != "BaseURL":
            _rewrite_dash_element(document, child, own_base, prefix, base_url, token)


def _element_text(element: minidom.Element) -> str:
    return "".join(node.data for node in element.childNodes if isinstance(node, minidom.Text))


def _scoped_url(
    base: str,
    reference: str,
    prefix: str,
    base_url: str,
    token: str,
    *,
    template: bool = False,
) -> str:
    """The delivery URL of ``reference`` resolved against ``base``, checked against
    ``prefix``; a template's identifiers are carried through."""
    identifiers: list[str] = []
    if template:

        def hole(match: re.Match[str]) -> str:
            identifiers.append(match.group(0))
            return f"\ue000{len(identifiers) - 1}\ue001"

        reference = _DASH_IDENTIFIER.sub(hole, reference)
    resolved = _join(base, reference)
    _check_scope(prefix, resolved, base, reference)
    query = urlsplit(reference).query
    url = _url(base_url, token, resolved, identifiers.__getitem__)
    return f"{url}?{query}" if query else url


def _join(base: str, reference: str) -> str:
    """``reference`` (relative) resolved against ``base`` as RFC 3986 merges paths: a base
    ending in ``/`` is a folder; the result ends in ``/`` when the reference names one."""
    parts = urlsplit(reference)
    if parts.scheme or parts.netloc or parts.path.startswith("/"):
        raise PlaylistError(f"{reference!r} (from {base!r}) is an absolute URL")
    if not parts.path:
        raise PlaylistError(f"an empty URL (from {base!r})")
    segments = base.split("/")[:-1]
    pieces = unquote(parts.path).split("/")
    for piece in pieces:
        if piece == "..":
            if not segments:
                raise PlaylistError(f"{reference!r} climbs above the root")
            segments.pop()
        elif piece not in ("", "."):
            segments.append(piece)
    folder = pieces[-1] in ("", ".", "..")
    return "/".join(segments) + ("/" if folder else "")


def _check_scope(prefix: str, resolved: str, base: str, reference: str) -> None:
    # Identifiers stand for digits or a rendition's name: any one plain character checks
    # the key's shape, and the delivery route checks the real key a player asks for.
    key = _HOLE.sub("0", resolved)
    inside = (
        (key == prefix or key_in_scope(prefix, key.removesuffix("/") + "/_"))
        if key.endswith("/")
        else key_in_scope(prefix, key)
    )
    if not inside:
        raise PlaylistError(f"{reference!r} (from {base!r}) is outside {prefix!r}")


def _url(
    base_url: str, token: str, key: str, identifier: Callable[[int], str] | None = None
) -> str:
    """``delivery_url`` of a key that may hold identifier holes, which are put back as they
    were (a template's ``$...$`` must reach the player unencoded)."""
    if identifier is None:
        return delivery_url(base_url, token, key)
    pieces = _HOLE.split(key)  # literal, index, literal, index, ..., literal
    path = "".join(
        identifier(int(piece)) if odd else quote(piece, safe="/")
        for odd, piece in ((i % 2 == 1, p) for i, p in enumerate(pieces))
    )
    return f"{base_url.rstrip('/')}{DELIVERY_PATH}/{token}/{path}"


def _check_prefix(prefix: str) -> None:
    if not prefix.endswith("/") or "\n" in prefix:
        raise ValueError(f"prefix must be a folder ending in '/': {prefix!r}")
    try:
        validate_key(prefix[:-1])
    except InvalidObjectKey as exc:
        raise ValueError(f"prefix is not a valid key prefix: {prefix!r}") from exc


def _grant(fields: list[str]) -> PlaybackGrant:
    # Only reached with a valid signature, so a failure here means a key or format mix-up
    # rather than an attack; it is refused all the same.
    if len(fields) != 4 or fields[0] != TOKEN_VERSION:
        raise InvalidPlaybackToken("token version or layout is unknown")
    _, prefix, expires_at, subject = fields
    if not _DIGITS.fullmatch(expires_at) or not subject:
        raise InvalidPlaybackToken("token payload is malformed")
    try:
        _check_prefix(prefix)
    except ValueError as exc:
        raise InvalidPlaybackToken("token prefix is malformed") from exc
    return PlaybackGrant(prefix=prefix, expires_at=int(expires_at), subject=subject)
