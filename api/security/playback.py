"""Signed, path-scoped playback tokens and the playlist rewriting that carries them.

A viewer who may watch a match gets one token for the folder of its HLS rendition
(``orgs/{org}/matches/{match}/{revision}/hls/``), or of one re-rendered view of it
(``.../hls/views/{view}/``). The token travels in the URL path
(``/delivery/{token}/{key}``), so players and CDNs need no header and no cookie, and every
playlist served through the delivery route is rewritten so that each URI in it carries the
token too.

Token format: ``{payload}.{signature}``, both base64url without padding. The payload is the
UTF-8 text ``version \\n prefix \\n expires_at \\n subject``; the signature is HMAC-SHA256 over
the payload *as transmitted* (its base64url text), so two different token strings never
verify to the same grant. The HMAC key is derived from the server secret with a purpose
label: the raw secret signs object URLs (`polyvision.storage.objects.signing`), and a
signature made for one purpose must be useless for the other.

Everything here is pure: the caller passes the secret and the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote, unquote, urlsplit

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
    """A playlist names something that cannot be served through the token's scope."""


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
    try:
        fields = unseal(derive_playback_key(secret), token, max_chars=_MAX_TOKEN_CHARS)
    except InvalidSignedToken as exc:
        raise InvalidPlaybackToken(str(exc)) from exc
    grant = _grant(fields)
    if now >= grant.expires_at:
        raise ExpiredPlaybackToken("token has expired")
    return grant


def key_in_scope(prefix: str, key: str) -> bool:
    """Whether ``key`` is a valid object key strictly inside the folder ``prefix``.

    ``prefix`` ends with ``/``, so ``.../hls/`` never matches ``.../hls-other/x``; ``..``, ``.``,
    empty segments, absolute keys and control characters are refused by the key rules before
    the prefix is compared, so no spelling of a key can step outside the folder.
    """
    try:
        validate_key(key)
    except InvalidObjectKey:
        return False
    return prefix.endswith("/") and key.startswith(prefix) and len(key) > len(prefix)


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
