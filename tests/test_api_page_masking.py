"""Masking of the frames the page's live log keeps (bridge.log.redact_frame, the frame ring): linear in
the frame, and blind to neither JSON `\\u` escapes nor long frames."""

from __future__ import annotations

import json
import time

from bridge.log import mask_url_passwords, redact_frame
from bridge.runtime.frame_ring import MAX_FRAME_CHARS, FrameRing


def test_a_megabyte_frame_with_an_at_sign_masks_in_well_under_a_second() -> None:
    frames = [
        '[2,"1","DataTransfer",{"data":"@' + "a" * 1_000_000 + '"}]',
        '[2,"1","DataTransfer",{"data":"@' + "a://b:" * 170_000 + '"}]',
        '[2,"1","DataTransfer",{"data":"ftp://u:' + "p" * 1_000_000 + '@host/"}]',
    ]
    for frame in frames:
        started = time.perf_counter()
        masked = redact_frame(frame)
        assert time.perf_counter() - started < 0.3, frame[:60]
    assert masked.endswith('ftp://u:***@host/"}]')


def test_url_passwords_are_masked_as_before() -> None:
    cases = {
        "ftp://user:pw@host/x": "ftp://user:***@host/x",
        '"ftp:\\/\\/user:p@ss/w@host" x': '"ftp:\\/\\/user:***@host" x',
        "a ftp://u:p@h b http://v:q@i c": "a ftp://u:***@h b http://v:***@i c",
        "sftp://:pw@h": "sftp://:***@h",
        "ftp://u:p h@x": "ftp://u:p h@x",
        "mailto:x@y": "mailto:x@y",
        "ftp://u@h": "ftp://u@h",
        "x" * 40 + "://u:pw@h": "x" * 40 + "://u:***@h",
    }
    assert {text: mask_url_passwords(text) for text in cases} == cases


def test_secrets_spelt_with_json_escapes_are_masked() -> None:
    key = redact_frame('[2,"1","ChangeConfiguration",{"key":"Authorization\\u004bey","value":"s3cret"}]')
    slashes = redact_frame('[2,"2","GetDiagnostics",{"location":"ftp:\\u002f\\u002fuser:pw@host/"}]')
    at = redact_frame('[2,"3","UpdateFirmware",{"location":"ftp://user:pw\\u0040host/fw"}]')
    assert json.loads(key)[3] == {"key": "AuthorizationKey", "value": "***"}
    assert json.loads(slashes)[3] == {"location": "ftp://user:***@host/"}
    assert json.loads(at)[3] == {"location": "ftp://user:***@host/fw"}
    assert redact_frame('[2,"4","X",{"a":"\\u00e9t\\u00e9"}]') == '[2,"4","X",{"a":"été"}]'
    assert "s3cret" not in redact_frame('not json "Authorization\\u004bey" s3cret')


def test_the_ring_keeps_a_frame_over_its_size_as_a_note_with_its_head() -> None:
    ring = FrameRing(now=lambda: 1_796_630_400.0)
    secret = "ftp://user:pw" + "x" * MAX_FRAME_CHARS + "@host/"
    started = time.perf_counter()
    ring.add("in", '[2,"big","DataTransfer",{"data":"' + secret + '"}]')
    assert time.perf_counter() - started < 0.3
    (frame,) = ring.since()
    assert (frame.type, frame.id, frame.action) == ("CALL", "big", "DataTransfer")
    assert "not kept" in frame.text and "pw" not in frame.text and len(frame.text) < 200
