"""safe_join, atomic writes, the restricted unpickler and image probing/decoding."""

from __future__ import annotations

import io
import os
import pickle
import stat
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from perception_tokens.images import (
    BadImageError,
    decode_png_gray,
    decode_rgb,
    encode_png,
    probe_image,
    sha256_bytes,
)
from perception_tokens.paths import UnsafePathError, atomic_write_bytes, safe_join
from perception_tokens.safe_pickle import UnsafePickleError, load_restricted_pickle, loads_restricted

# ----------------------------------------------------------------------------- safe_join


def test_safe_join_accepts_paths_inside_root(tmp_path):
    (tmp_path / "a").mkdir()
    assert safe_join(tmp_path, "a/b.jpg") == (tmp_path / "a" / "b.jpg").resolve()
    assert safe_join(tmp_path, "a/../c.jpg") == (tmp_path / "c.jpg").resolve()
    assert safe_join(tmp_path, "./x/y") == (tmp_path / "x" / "y").resolve()


@pytest.mark.parametrize(
    "bad, why",
    [
        ("/etc/passwd", "absolute"),
        ("../secret.jpg", "climbs"),
        ("a/../../secret.jpg", "climbs"),
        ("a/b/../../../x", "climbs"),
        ("C:\\Windows\\win.ini", "drive"),
        ("C:win.ini", "drive"),
        ("\\\\server\\share\\x.jpg", "absolute"),
        ("train2017\\x.jpg", "backslash"),
        ("", "empty"),
        ("a\x00b.jpg", "NUL"),
    ],
)
def test_safe_join_refuses_escapes(tmp_path, bad, why):
    with pytest.raises(UnsafePathError) as err:
        safe_join(tmp_path, bad)
    msg = str(err.value)
    assert why in msg
    assert repr(bad) in msg and str(tmp_path) in msg


def test_safe_join_refuses_symlink_out_of_root_but_allows_inner_symlink(tmp_path):
    root = tmp_path / "root"
    (root / "imgs").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"x")
    (root / "imgs" / "evil").symlink_to(outside)
    (root / "imgs" / "real.jpg").write_bytes(b"y")
    (root / "imgs" / "alias.jpg").symlink_to(root / "imgs" / "real.jpg")
    with pytest.raises(UnsafePathError, match="resolves outside"):
        safe_join(root, "imgs/evil/secret.jpg")
    assert safe_join(root, "imgs/alias.jpg") == (root / "imgs" / "real.jpg").resolve()


def test_atomic_write_leaves_no_temp_files_and_readable_mode(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second", fsync=False)
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


# ----------------------------------------------------------------------------- pickle


def test_restricted_pickle_loads_plain_data(tmp_path):
    refs = [{"ref_id": 1, "sentences": [{"sent": "red ball", "tokens": ["red", "ball"]}],
             "tags": {"a", "b"}, "frozen": frozenset({1}), "score": 0.5, "none": None, "t": (1, 2)}]
    path = tmp_path / "refs.p"
    path.write_bytes(pickle.dumps(refs, protocol=2))
    assert load_restricted_pickle(path) == refs


def test_restricted_pickle_reads_python2_str_as_text():
    # A Python 2 protocol-2 pickle of {'raw': 'caf\xc3\xa9', 'l1': '\xe9t\xe9'}: py2 str are
    # SHORT_BINSTRING (opcode U) byte strings; the first is UTF-8, the second Latin-1.
    data = (b"\x80\x02}q\x00(U\x03rawq\x01U\x05caf\xc3\xa9q\x02"
            b"U\x02l1q\x03U\x03\xe9t\xe9q\x04u.")
    assert loads_restricted(data) == {"raw": "café", "l1": "été"}


class _System:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Exec:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import builtins

        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("protocol", [0, 2, 5])
@pytest.mark.parametrize("payload, refused", [(_System, "system"), (_Exec, "exec")])
def test_restricted_pickle_refuses_code_and_runs_nothing(tmp_path, protocol, payload, refused):
    marker = tmp_path / "marker"
    evil = [{"ref_id": 0, "sentences": []}, {"nested": [payload(marker)]}]
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps(evil, protocol=protocol))
    with pytest.raises(UnsafePickleError) as err:
        load_restricted_pickle(path)
    assert str(path) in str(err.value)
    assert refused in err.value.global_name
    assert not marker.exists(), "the malicious pickle ran code"


def test_restricted_pickle_refuses_getattr_and_reports_malformed(tmp_path):
    with pytest.raises(UnsafePickleError, match="builtins.getattr"):
        # hand-written protocol-0 pickle: getattr(os, "system")("...")
        loads_restricted(b"cbuiltins\ngetattr\n(cos\nsystem\nS'x'\ntR.")
    bad = tmp_path / "bad.p"
    bad.write_bytes(b"\x80\x02]q\x00(K\x01")  # cut short
    with pytest.raises(ValueError, match="bad.p: malformed pickle"):
        load_restricted_pickle(bad)


# ----------------------------------------------------------------------------- images


def _jpeg(arr, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def noise_rgb():
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_probe_reports_size_format_mode(noise_rgb):
    info = probe_image(_jpeg(noise_rgb))
    assert (info.width, info.height, info.format, info.mode) == (64, 48, "jpeg", "RGB")
    info = probe_image(encode_png(noise_rgb[:, :, 0]))
    assert (info.width, info.height, info.format, info.mode) == (64, 48, "png", "L")
    assert sha256_bytes(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_probe_rejects_bad_bytes(noise_rgb):
    jpeg = _jpeg(noise_rgb)
    png = encode_png(noise_rgb)
    cases = {
        "empty file": b"",
        "not an image": b"this is a text file, not an image\n",
    }
    for reason, data in cases.items():
        with pytest.raises(BadImageError) as err:
            probe_image(data)
        assert err.value.reason == reason
    for truncated in (jpeg[: len(jpeg) // 2], jpeg[:-20], png[: len(png) // 2], png[:-14]):
        with pytest.raises(BadImageError) as err:
            probe_image(truncated)
        assert err.value.reason in ("truncated image", "corrupt image"), err.value
    with pytest.raises(BadImageError) as err:
        probe_image(jpeg[: len(jpeg) // 2])
    assert err.value.reason == "truncated image"  # header intact: only a full decode notices


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (a decompression-bomb header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_probe_rejects_decompression_bombs(noise_rgb, monkeypatch):
    with pytest.raises(BadImageError) as err:
        probe_image(_jpeg(noise_rgb), max_pixels=1000)
    assert err.value.reason == "decompression bomb" and "3072" in str(err.value)
    # Even with Pillow's own global limit switched off, our explicit limit holds.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(BadImageError) as err:
        probe_image(_png_header_only(60_000, 60_000))
    assert err.value.reason == "decompression bomb"


def test_truncated_jpeg_caught_even_if_pillow_allows_truncation(noise_rgb, monkeypatch):
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    jpeg = _jpeg(noise_rgb)
    with pytest.raises(BadImageError) as err:
        probe_image(jpeg[: len(jpeg) - 300])
    assert err.value.reason == "truncated image"


def test_decode_rgb_converts_all_common_modes(noise_rgb):
    gray = noise_rgb[:, :, 0]

    def png_of(im: Image.Image) -> bytes:
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return buf.getvalue()

    out = decode_rgb(png_of(Image.fromarray(gray)))
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert np.array_equal(out[:, :, 0], gray) and np.array_equal(out[:, :, 2], gray)

    rgba = np.dstack([noise_rgb, np.full((48, 64), 7, np.uint8)])
    assert np.array_equal(decode_rgb(png_of(Image.fromarray(rgba))), noise_rgb)

    pal = Image.fromarray(noise_rgb).quantize(colors=16)
    assert np.array_equal(decode_rgb(png_of(pal)), np.asarray(pal.convert("RGB")))

    wide = gray.astype(np.uint16) * 257  # 16-bit PNG: v*257 -> top byte v
    out16 = decode_rgb(encode_png(wide))
    assert np.array_equal(out16[:, :, 1], gray)

    buf = io.BytesIO()
    Image.fromarray(noise_rgb).convert("CMYK").save(buf, format="JPEG", quality=95)
    out_cmyk = decode_rgb(buf.getvalue())
    assert out_cmyk.shape == (48, 64, 3)
    assert np.abs(out_cmyk.astype(int) - noise_rgb.astype(int)).mean() < 30

    la = Image.fromarray(gray).convert("LA")
    assert np.array_equal(decode_rgb(png_of(la))[:, :, 0], gray)


def test_png_round_trips_and_gray_decoder_is_strict(noise_rgb):
    gray = noise_rgb[:, :, 1]
    assert np.array_equal(decode_png_gray(encode_png(gray)), gray)
    wide = (gray.astype(np.uint16) * 200)
    back = decode_png_gray(encode_png(wide))
    assert back.dtype == np.uint16 and np.array_equal(back, wide)
    assert np.array_equal(decode_rgb(encode_png(noise_rgb)), noise_rgb)
    assert encode_png(noise_rgb) == encode_png(noise_rgb.copy())  # deterministic bytes
    with pytest.raises(BadImageError, match="not single-channel"):
        decode_png_gray(encode_png(noise_rgb))
    with pytest.raises(BadImageError, match="not a png"):
        decode_png_gray(_jpeg(noise_rgb))
    with pytest.raises(ValueError):
        encode_png(noise_rgb.astype(np.float32))
    with pytest.raises(ValueError):
        encode_png(np.zeros((0, 4), np.uint8))
