"""Playback tokens, key scoping and manifest rewriting (HLS, DASH, WebVTT) as pure functions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from xml.dom import minidom

import pytest

from api.security.playback import (
    ExpiredPlaybackToken,
    InvalidPlaybackToken,
    PlaylistError,
    create_token,
    derive_playback_key,
    key_in_scope,
    playback_prefix,
    resolve_reference,
    rewrite_dash_manifest,
    rewrite_playlist,
    rewrite_vtt,
    verify_token,
)
from polyvision.artifacts import artifact_key

SECRET = b"a-test-secret-that-is-long-enough-for-production"
PREFIX = "orgs/o1/matches/m1/1/hls/"
NOW = 1_750_000_000
LATER = NOW + 3600
BASE = "https://api.example.com"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _flip(text: str, index: int) -> str:
    """``text`` with one base64url character replaced by another."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def _signed(payload: str, secret: bytes = SECRET) -> str:
    """A token with a valid signature over an arbitrary payload (for layout checks)."""
    encoded = _b64(payload.encode())
    signature = hmac.new(derive_playback_key(secret), encoded.encode(), hashlib.sha256).digest()
    return f"{encoded}.{_b64(signature)}"


# --- tokens --------------------------------------------------------------------------------


def test_a_token_round_trips_its_prefix_expiry_and_subject() -> None:
    token = create_token(SECRET, PREFIX, "user-1", LATER)
    grant = verify_token(SECRET, token, NOW)
    assert (grant.prefix, grant.expires_at, grant.subject) == (PREFIX, LATER, "user-1")


def test_a_token_is_one_url_path_segment() -> None:
    token = create_token(SECRET, PREFIX, "user-1", LATER)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)


def test_a_token_is_refused_with_another_secret() -> None:
    token = create_token(SECRET, PREFIX, "user-1", LATER)
    with pytest.raises(InvalidPlaybackToken, match="signature"):
        verify_token(b"another-secret", token, NOW)


def test_the_signing_key_is_derived_not_the_raw_secret() -> None:
    # The raw secret signs object URLs: a MAC made with it must not pass as a playback token.
    token = create_token(SECRET, PREFIX, "user-1", LATER)
    encoded = token.split(".")[0]
    raw_mac = _b64(hmac.new(SECRET, encoded.encode(), hashlib.sha256).digest())
    assert derive_playback_key(SECRET) != SECRET
    with pytest.raises(InvalidPlaybackToken):
        verify_token(SECRET, f"{encoded}.{raw_mac}", NOW)


@pytest.mark.parametrize("position", [0, 10, -1])
def test_a_token_with_a_changed_signature_character_is_refused(position: int) -> None:
    token = create_token(SECRET, PREFIX, "user-1", LATER)
    encoded, signature = token.split(".")
    tampered = f"{encoded}.{_flip(signature, position % len(signature))}"
    with pytest.raises(InvalidPlaybackToken, match="signature") as caught:
        verify_token(SECRET, tampered, NOW)
    assert not isinstance(caught.value, ExpiredPlaybackToken)


@pytest.mark.parametrize("position", [0, 20, -1])
def test_a_token_with_a_changed_payload_character_is_refused(position: int) -> None:
    token = create_token(SECRET, PREFIX, "user-1", LATER)
    encoded, signature = token.split(".")
    tampered = f"{_flip(encoded, position % len(encoded))}.{signature}"
    with pytest.raises(InvalidPlaybackToken, match="signature"):
        verify_token(SECRET, tampered, NOW)


def test_a_payload_for_a_wider_prefix_does_not_verify_with_the_original_signature() -> None:
    token = create_token(SECRET, PREFIX, "user-1", LATER)
    signature = token.split(".")[1]
    wider = _b64(f"1\norgs/\n{LATER}\nuser-1".encode())
    with pytest.raises(InvalidPlaybackToken):
        verify_token(SECRET, f"{wider}.{signature}", NOW)


def test_a_token_is_refused_from_its_expiry_on() -> None:
    token = create_token(SECRET, PREFIX, "user-1", LATER)
    assert verify_token(SECRET, token, LATER - 1).expires_at == LATER
    with pytest.raises(ExpiredPlaybackToken):
        verify_token(SECRET, token, LATER)
    past = create_token(SECRET, PREFIX, "user-1", NOW - 60)
    with pytest.raises(ExpiredPlaybackToken, match="expired"):
        verify_token(SECRET, past, NOW)


def test_an_expired_token_with_a_bad_signature_is_invalid_not_expired() -> None:
    # The expiry of an unsigned payload is not believed, not even to word the refusal.
    token = create_token(SECRET, PREFIX, "user-1", NOW - 60)
    with pytest.raises(InvalidPlaybackToken) as caught:
        verify_token(b"another-secret", token, NOW)
    assert not isinstance(caught.value, ExpiredPlaybackToken)


@pytest.mark.parametrize(
    "token",
    ["", ".", "abc", "abc.", ".abc", "a.b.c", "ab+c.def", "abc.de/f", "abc.def\n", "a" * 5000],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidPlaybackToken):
        verify_token(SECRET, token, NOW)


@pytest.mark.parametrize(
    "payload",
    [
        f"2\n{PREFIX}\n{LATER}\nuser-1",  # unknown version
        f"1\n{PREFIX}\n{LATER}",  # a field missing
        f"1\n{PREFIX}\n{LATER}\nuser-1\nextra",  # a field too many
        f"1\n{PREFIX}\nsoon\nuser-1",  # expiry not a number
        f"1\n{PREFIX}\n-5\nuser-1",
        f"1\n{PREFIX}\n{LATER}\n",  # no subject
        f"1\norgs/o1/matches/m1/1/hls\n{LATER}\nuser-1",  # prefix is not a folder
        f"1\norgs/o1/../../\n{LATER}\nuser-1",
        f"1\n/\n{LATER}\nuser-1",
        f"1\n\n{LATER}\nuser-1",
    ],
)
def test_authentic_tokens_with_a_bad_layout_are_refused(payload: str) -> None:
    with pytest.raises(InvalidPlaybackToken):
        verify_token(SECRET, _signed(payload), NOW)


def test_the_signed_layout_helper_matches_real_tokens() -> None:
    # Guards the test above: with a good payload the helper's token verifies.
    assert _signed(f"1\n{PREFIX}\n{LATER}\nuser-1") == create_token(SECRET, PREFIX, "user-1", LATER)


@pytest.mark.parametrize(
    "prefix", ["orgs/o1/matches/m1/1/hls", "", "/", "/orgs/o1/", "orgs/../", "orgs//x/", "a\nb/"]
)
def test_tokens_are_only_made_for_folder_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        create_token(SECRET, prefix, "user-1", LATER)


@pytest.mark.parametrize("subject", ["", "user\n1"])
def test_tokens_need_a_one_line_subject(subject: str) -> None:
    with pytest.raises(ValueError, match="subject"):
        create_token(SECRET, PREFIX, subject, LATER)


# --- scope ---------------------------------------------------------------------------------


def test_the_playback_prefix_is_the_folder_the_packager_publishes() -> None:
    assert playback_prefix("o1", "m1", 1) == PREFIX
    assert artifact_key("o1", "m1", 1, "hls", "master.m3u8").startswith(PREFIX)


@pytest.mark.parametrize(
    "key",
    [PREFIX + "master.m3u8", PREFIX + "seg_00000.m4s", PREFIX + "sub/media.m3u8"],
)
def test_keys_inside_the_folder_are_in_scope(key: str) -> None:
    assert key_in_scope(PREFIX, key)


@pytest.mark.parametrize(
    "key",
    [
        PREFIX,  # the folder itself
        PREFIX[:-1],
        "orgs/o1/matches/m1/1/hls-other/master.m3u8",  # a sibling sharing the name's start
        "orgs/o1/matches/m1/1/hlsx/master.m3u8",
        "orgs/o1/matches/m1/10/hls/master.m3u8",  # revision 10 is not revision 1
        "orgs/o1/matches/m1/2/hls/master.m3u8",
        "orgs/o1/matches/m2/1/hls/master.m3u8",
        "orgs/o2/matches/m1/1/hls/master.m3u8",
        PREFIX + "../../2/hls/master.m3u8",
        PREFIX + "../hls/master.m3u8",
        PREFIX + "./master.m3u8",
        PREFIX + ".hidden",
        PREFIX + "a//master.m3u8",
        PREFIX + "sub/",
        "/" + PREFIX + "master.m3u8",
        PREFIX + "seg\\..\\x.m4s",
        PREFIX + "seg\x00.m4s",
        "",
    ],
)
def test_keys_outside_the_folder_are_out_of_scope(key: str) -> None:
    assert not key_in_scope(PREFIX, key)


# --- playlists -----------------------------------------------------------------------------


def test_relative_references_resolve_against_the_playlists_folder() -> None:
    playlist = PREFIX + "master.m3u8"
    assert resolve_reference(playlist, "media.m3u8") == PREFIX + "media.m3u8"
    assert resolve_reference(playlist, "./sub/../media.m3u8") == PREFIX + "media.m3u8"
    assert resolve_reference(playlist, "low/media.m3u8?v=2") == PREFIX + "low/media.m3u8"
    assert resolve_reference(playlist, "seg%2000.m4s") == PREFIX + "seg 00.m4s"
    assert resolve_reference(playlist, "../hls/init.mp4") == PREFIX + "init.mp4"


@pytest.mark.parametrize(
    "uri",
    ["https://cdn.example.com/seg.m4s", "//cdn.example.com/seg.m4s", "/orgs/o1/seg.m4s", "", "?x"],
)
def test_absolute_or_empty_references_are_refused(uri: str) -> None:
    with pytest.raises(PlaylistError):
        resolve_reference(PREFIX + "master.m3u8", uri)


def test_a_reference_cannot_climb_above_the_root() -> None:
    with pytest.raises(PlaylistError, match="root"):
        resolve_reference("a/b.m3u8", "../../x.m4s")


MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-KEY:METHOD=NONE
#EXT-X-MAP:URI="init.mp4"
#EXTINF:1.000000,
seg_00000.m4s
#EXTINF:0.800000,
seg_00001.m4s?part=1
#EXT-X-ENDLIST
"""


def test_every_uri_line_and_uri_attribute_is_rewritten_to_the_delivery_route() -> None:
    rewritten = rewrite_playlist(MEDIA, PREFIX + "media.m3u8", PREFIX, BASE, "TOK.SIG")
    url = f"{BASE}/delivery/TOK.SIG/{PREFIX}"
    assert rewritten.splitlines() == [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:1",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-KEY:METHOD=NONE",
        f'#EXT-X-MAP:URI="{url}init.mp4"',
        "#EXTINF:1.000000,",
        f"{url}seg_00000.m4s",
        "#EXTINF:0.800000,",
        f"{url}seg_00001.m4s?part=1",
        "#EXT-X-ENDLIST",
    ]


def test_a_master_playlists_media_and_variant_uris_are_rewritten() -> None:
    master = (
        "#EXTM3U\n"
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en",URI="audio/media.m3u8"\n'
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1000,URI="iframes.m3u8"\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=200000,CODECS="avc1.64001f",AUDIO="a"\n'
        "\n"
        "media.m3u8\n"
    )
    rewritten = rewrite_playlist(master, PREFIX + "master.m3u8", PREFIX, BASE + "/", "T.S")
    url = f"{BASE}/delivery/T.S/{PREFIX}"
    assert f'URI="{url}audio/media.m3u8"' in rewritten
    assert f'URI="{url}iframes.m3u8"' in rewritten
    assert 'CODECS="avc1.64001f",AUDIO="a"' in rewritten
    assert rewritten.splitlines()[-1] == f"{url}media.m3u8"
    assert rewritten.count("/delivery/") == 3


@pytest.mark.parametrize(
    "line",
    [
        "../../2/hls/seg_00000.m4s",  # another revision
        "../../../m2/1/hls/seg_00000.m4s",  # another match
        "https://cdn.example.com/seg_00000.m4s",
        '#EXT-X-MAP:URI="../other/init.mp4"',
        '#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example.com/k"',
    ],
)
def test_a_playlist_naming_anything_outside_the_folder_is_refused(line: str) -> None:
    with pytest.raises(PlaylistError):
        rewrite_playlist(f"#EXTM3U\n{line}\n", PREFIX + "media.m3u8", PREFIX, BASE, "T.S")


# --- DASH manifests and the thumbnails index -------------------------------------------------

MPD = """<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT4S">
  <Period id="0">
    <AdaptationSet mimeType="video/mp4">
      <Representation id="1080p" bandwidth="6000000">
        <SegmentTemplate timescale="12800" initialization="1080p/init.mp4"
            media="1080p/seg_$Number%05d$.m4s" startNumber="0">
          <SegmentTimeline><S t="0" d="12800" r="3"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
      <Representation id="720p" bandwidth="3000000">
        <BaseURL>720p/</BaseURL>
        <SegmentList><Initialization sourceURL="init.mp4"/>
          <SegmentURL media="seg_00000.m4s?v=1"/></SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"""


def _mpd_urls(text: str) -> list[str]:
    document = minidom.parseString(text)
    urls = [
        node.getAttribute(name)
        for tag, name in [
            ("SegmentTemplate", "initialization"),
            ("SegmentTemplate", "media"),
            ("Initialization", "sourceURL"),
            ("SegmentURL", "media"),
        ]
        for node in document.getElementsByTagName(tag)
    ]
    urls += [
        "".join(t.data for t in node.childNodes if isinstance(t, minidom.Text))
        for node in document.getElementsByTagName("BaseURL")
    ]
    return urls


def test_every_url_of_an_mpd_is_rewritten_with_templates_kept() -> None:
    rewritten = rewrite_dash_manifest(MPD, PREFIX + "manifest.mpd", PREFIX, BASE, "T.S")
    url = f"{BASE}/delivery/T.S/{PREFIX}"
    assert rewritten.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<MPD')
    assert 'xmlns="urn:mpeg:dash:schema:mpd:2011"' in rewritten
    assert _mpd_urls(rewritten) == [
        f"{url}1080p/init.mp4",
        f"{url}1080p/seg_$Number%05d$.m4s",  # the identifier reaches the player unencoded
        f"{url}720p/init.mp4",  # resolved against the Representation's BaseURL
        f"{url}720p/seg_00000.m4s?v=1",
        f"{url}720p/",
    ]
    # Everything else is as it was.
    assert '<S t="0" d="12800" r="3"/>' in rewritten
    assert 'mediaPresentationDuration="PT4S"' in rewritten


def test_template_identifiers_survive_and_literal_parts_are_encoded() -> None:
    mpd = (
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period><AdaptationSet>'
        '<SegmentTemplate media="$RepresentationID$/a b_$Time$_$$.m4s" '
        'initialization="$RepresentationID$/init.mp4"/>'
        "</AdaptationSet></Period></MPD>"
    )
    rewritten = rewrite_dash_manifest(mpd, PREFIX + "manifest.mpd", PREFIX, BASE, "T.S")
    url = f"{BASE}/delivery/T.S/{PREFIX}"
    assert _mpd_urls(rewritten) == [
        f"{url}$RepresentationID$/init.mp4",
        f"{url}$RepresentationID$/a%20b_$Time$_$$.m4s",
    ]


def test_an_mpd_base_url_at_the_top_applies_below() -> None:
    mpd = (
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><BaseURL>panorama/</BaseURL><Period>'
        '<AdaptationSet><SegmentTemplate media="seg_$Number$.m4s" initialization="init.mp4"/>'
        "</AdaptationSet></Period></MPD>"
    )
    rewritten = rewrite_dash_manifest(mpd, PREFIX + "manifest.mpd", PREFIX, BASE, "T.S")
    url = f"{BASE}/delivery/T.S/{PREFIX}panorama/"
    assert _mpd_urls(rewritten) == [f"{url}init.mp4", f"{url}seg_$Number$.m4s", url]


@pytest.mark.parametrize(
    "inner",
    [
        "<BaseURL>../../2/hls/</BaseURL>",  # another revision
        "<BaseURL>https://cdn.example.com/</BaseURL>",
        "<BaseURL>//cdn.example.com/x/</BaseURL>",
        "<BaseURL>/orgs/o1/</BaseURL>",
        "<BaseURL></BaseURL>",
        '<AdaptationSet><SegmentTemplate media="../../../m2/1/hls/seg_$Number$.m4s"/>'
        "</AdaptationSet>",
        '<AdaptationSet><SegmentList><SegmentURL media="https://x.example/s.m4s"/>'
        "</SegmentList></AdaptationSet>",
        "<BaseURL>../</BaseURL>",  # the revision's folder: wider than the token's
    ],
)
def test_an_mpd_naming_anything_outside_the_folder_is_refused(inner: str) -> None:
    mpd = f'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period>{inner}</Period></MPD>'
    with pytest.raises(PlaylistError):
        rewrite_dash_manifest(mpd, PREFIX + "manifest.mpd", PREFIX, BASE, "T.S")


def test_a_malformed_mpd_is_refused() -> None:
    with pytest.raises(PlaylistError, match="well-formed"):
        rewrite_dash_manifest("<MPD><Period>", PREFIX + "manifest.mpd", PREFIX, BASE, "T.S")


def test_the_thumbnails_index_points_every_cue_at_the_delivery_route() -> None:
    vtt = (
        "WEBVTT\n"
        "\n"
        "NOTE sprites of 10x10\n"
        "\n"
        "00:00:00.000 --> 00:00:05.000\n"
        "thumbnails/sprite-000.jpg#xywh=0,0,160,90\n"
        "\n"
        "cue-2\n"
        "00:00:05.000 --> 00:00:10.000\n"
        "thumbnails/sprite-000.jpg#xywh=160,0,160,90\n"
    )
    rewritten = rewrite_vtt(vtt, PREFIX + "thumbnails.vtt", PREFIX, BASE, "T.S")
    url = f"{BASE}/delivery/T.S/{PREFIX}thumbnails/sprite-000.jpg"
    assert rewritten.splitlines() == [
        "WEBVTT",
        "",
        "NOTE sprites of 10x10",
        "",
        "00:00:00.000 --> 00:00:05.000",
        f"{url}#xywh=0,0,160,90",
        "",
        "cue-2",
        "00:00:05.000 --> 00:00:10.000",
        f"{url}#xywh=160,0,160,90",
    ]
    for bad in ("../../2/hls/a.jpg", "https://x.example/a.jpg"):
        with pytest.raises(PlaylistError):
            rewrite_vtt(
                f"WEBVTT\n\n00:00.000 --> 00:01.000\n{bad}\n",
                PREFIX + "thumbnails.vtt",
                PREFIX,
                BASE,
                "T.S",
            )
