import base64
import functools
import io
import math
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from bot import media

ROOT = Path(__file__).resolve().parents[1]


def png(size=(64, 48), color="teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny file that claims 900 megapixels (a decompression bomb)."""
    raw = zlib.compress(b"\x00" * 1024)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@functools.cache
def solid_png(width: int, height: int) -> bytes:
    """A real, fully decodable RGBA PNG of one colour: 8000x5000 is 40 Mpx in ~160 KB, the
    hostile upload that cost 650 MB and 3 s of CPU before decoding was capped."""
    row = b"\x00" + bytes((30, 120, 200, 128)) * width  # filter byte, then the pixels
    squeeze = zlib.compressobj(6)
    data = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", data)
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return struct.pack(">I", len(data)) + kind + data + crc


def cmyk_jpeg(size=(6000, 4000)) -> bytes:
    out = io.BytesIO()
    Image.new("CMYK", size, (10, 80, 30, 5)).save(out, "JPEG", quality=80)
    return out.getvalue()


def peak_rss_mb(call: str, data: bytes, tmp_path) -> tuple[float, str]:
    """Peak memory growth (MB) of ``call`` on ``data`` in a fresh interpreter, and its result
    (Pillow allocates outside Python's allocator: only the process's peak RSS sees it)."""
    source = tmp_path / "input"
    source.write_bytes(data)
    script = f"""
import sys
from bot import mask, media
data = open({str(source)!r}, "rb").read()
def vm(key):  # ru_maxrss survives exec (it would count the parent's peak): /proc it is
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key))
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from here
before = vm("VmRSS:")
try:
    {call}
    result = "ok"
except media.MediaError as exc:
    result = exc.reason
print((vm("VmHWM:") - before) / 1024, result)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    grown, result = done.stdout.split()
    return float(grown), result


@pytest.mark.parametrize(
    "call",
    [
        "media.upload_data_uri(data)",
        "media.to_jpeg(data)",
        "media.image_size(data)",
        "mask.normalise_mask(data, (1024, 1024))",
        "mask.labelled_grid(data)",
    ],
)
def test_a_40_megapixel_png_is_refused_from_its_header(call, tmp_path):
    hostile = solid_png(8000, 5000)
    assert len(hostile) < 200_000
    grown, result = peak_rss_mb(call, hostile, tmp_path)
    assert result == "too_many_pixels"
    assert grown < 20  # was 650 MB for upload_data_uri


def test_the_largest_accepted_png_is_decoded_within_bounds(tmp_path):
    largest = solid_png(4096, 4096)  # Midjourney's largest output (a 4x upscale)
    grown, result = peak_rss_mb("media.upload_data_uri(data)", largest, tmp_path)
    assert result == "ok"
    assert grown < 120  # its 67 MB of pixels and a few MB more (was 274 MB)
    with pytest.raises(media.MediaError) as caught:
        media.image_size(solid_png(4097, 4096))
    assert caught.value.reason == "too_many_pixels"


def test_a_big_jpeg_is_decoded_reduced(tmp_path):
    out = io.BytesIO()
    Image.new("RGB", (8000, 6000), "orange").save(out, "JPEG")  # a 48 Mpx phone photo
    grown, result = peak_rss_mb("media.upload_data_uri(data)", out.getvalue(), tmp_path)
    assert result == "ok"  # libjpeg decodes it at a quarter: 3 Mpx
    assert grown < 50  # was refused; at half size it would have cost 63 MB
    uri = media.upload_data_uri(out.getvalue())
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert image.size == (2000, 1500)  # libjpeg at 1/4: 10 % under 2048 is close enough


def test_a_large_cmyk_jpeg_becomes_an_rgb_jpeg():
    """It raised "cannot write mode CMYK as PNG" and the user never heard back."""
    uri = media.upload_data_uri(cmyk_jpeg())
    assert uri.startswith("data:image/jpeg;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert image.mode == "RGB" and max(image.size) == media.UPLOAD_MAX_SIDE
    small = media.upload_data_uri(cmyk_jpeg((600, 400)))  # re-encoded too: RGB for the API
    assert Image.open(io.BytesIO(base64.b64decode(small.split(",", 1)[1]))).mode == "RGB"
    assert Image.open(io.BytesIO(media.to_jpeg(cmyk_jpeg()))).mode == "RGB"


def test_exif_rotation_is_applied():
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°
    Image.new("RGB", (400, 200), "red").save(out, "JPEG", exif=exif)
    uri = media.upload_data_uri(out.getvalue())
    assert Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size == (200, 400)


def test_a_small_png_passes_as_is():
    data = png()
    uri = media.upload_data_uri(data)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == data


def test_large_images_are_downscaled_to_jpeg():
    uri = media.upload_data_uri(png((4000, 3000)))
    assert uri.startswith("data:image/jpeg;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert max(image.size) == media.UPLOAD_MAX_SIDE


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4 not an image", "not_image"),
        (png()[:40], "not_image"),
        (bomb_png(), "too_many_pixels"),
        (b"x" * (media.MAX_UPLOAD + 1), "too_big"),
    ],
)
def test_bad_uploads_are_refused_by_content(data, reason):
    with pytest.raises(media.MediaError) as caught:
        media.upload_data_uri(data)
    assert caught.value.reason == reason


def test_to_jpeg_flattens_transparency_and_fits_limits():
    out = io.BytesIO()
    Image.new("RGBA", (6000, 1000), (255, 0, 0, 0)).save(out, "PNG")
    jpeg = Image.open(io.BytesIO(media.to_jpeg(out.getvalue())))
    assert jpeg.format == "JPEG" and jpeg.mode == "RGB"
    assert max(jpeg.size) <= media.PHOTO_MAX_SIDE and sum(jpeg.size) <= 10000


def test_media_cache_round_trip(tmp_path):
    cache = media.MediaCache(tmp_path / "media")
    assert cache.get("k") is None
    cache.put("k", b"bytes")
    assert cache.get("k") == b"bytes"


def test_sniff_names_what_the_first_bytes_show() -> None:
    assert media.sniff(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert media.sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert media.sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert media.sniff(b"GIF89a") == "image/gif"
    assert media.sniff(b"\x00\x00\x00\x18ftypmp42") == "video/mp4"
    assert media.sniff(b"\x1aE\xdf\xa3") == "video/webm"
    assert media.sniff(b"<html>") == media.sniff(b"") == ""


def _psnr(a: Image.Image, b: Image.Image) -> float:
    from PIL import ImageChops, ImageStat

    stat = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB")))
    mse = sum(stat.sum2) / (3 * a.width * a.height)
    return 10 * math.log10(255**2 / max(mse, 1e-10))


def _picture(size: tuple[int, int]) -> Image.Image:
    """Detail at every scale (gradients, edges, noise): what a preview's shrink must keep."""
    base = Image.linear_gradient("L").resize(size).convert("RGB")
    noise = Image.effect_noise(size, 30).convert("RGB")
    image = Image.blend(base, noise, 0.3)
    image.paste((200, 40, 40), (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    return image


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPEG"])
def test_a_preview_is_a_640_px_jpeg_as_close_to_bicubic_as_the_encoding_allows(fmt):
    """Previews are shrunk the fast way (box reduce, then bilinear): same size and format as
    the bicubic ``to_jpeg(data, 640, 70)`` they replace, and a picture nobody tells apart."""
    out = io.BytesIO()
    _picture((2048, 1536)).save(out, fmt)
    data = out.getvalue()
    preview = Image.open(io.BytesIO(media.to_preview(data)))
    bicubic = Image.open(io.BytesIO(media.to_jpeg(data, 640, 70)))
    assert preview.format == "JPEG" and preview.mode == "RGB"
    assert preview.size == bicubic.size
    assert max(preview.size) <= media.PREVIEW_MAX_SIDE
    assert _psnr(preview, bicubic) > 35
    reference = media.decode(data, 640)  # the bicubic pixels, before any JPEG
    assert _psnr(preview, reference) > 30


def test_a_transparent_or_palette_preview_takes_the_banded_way_and_is_flattened():
    rgba = Image.new("RGBA", (1800, 1200), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 900, 1200))
    for image in (rgba, rgba.convert("P")):
        out = io.BytesIO()
        image.save(out, "PNG")
        preview = Image.open(io.BytesIO(media.to_preview(out.getvalue())))
        assert preview.size == (640, 427) and preview.mode == "RGB"
        left, right = preview.getpixel((100, 200)), preview.getpixel((540, 200))
        assert left[2] > 200 and left[0] < 60  # the opaque half stays blue
        if image.mode == "RGBA":
            assert min(right) > 230  # the transparent half is white, not black


def _jpeg(size=(640, 480), mode="RGB", **options) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "teal" if mode != "L" else 128).save(out, "JPEG", **options)
    return out.getvalue()


def _damaged_png(where: str) -> bytes:
    """A PNG changed in transit: its header still opens, its IDAT chunk fails its CRC.
    ``where``: "crc" (the pixels decode, only the CRC shows it) or "pixels" (they do not)."""
    data = bytearray(png((256, 256)))
    at = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[at - 4 : at])
    data[at + 4 + length if where == "crc" else at + 10] ^= 0xFF
    return bytes(data)


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return _jpeg(exif=exif)


def _rgba_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (64, 64), (255, 0, 0, 0)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "extension"), [(png((2048, 2048)), "png"), (_jpeg(), "jpg"), (_jpeg(mode="L"), "jpg")]
)
def test_a_small_intact_png_or_jpeg_is_its_own_photo(data, extension):
    """No decode and no re-encode: the original's bytes are the photo."""
    assert media.to_photo(data) == (data, extension)


@pytest.mark.parametrize(
    "data",
    [
        _damaged_png("crc"),  # converted: Pillow decodes it, a platform might not
        _damaged_png("pixels"),  # refused, as to_jpeg refuses it: the link is posted instead
        _jpeg()[:-2],  # no end marker: cut short
        _rotated_jpeg(),  # a viewer would rotate it; a platform may not
        _rgba_png(),  # transparency is flattened onto white, not left to the platform
        png((2600, 100)),  # over PHOTO_MAX_SIDE
        _jpeg(mode="CMYK"),
    ],
    ids=["bad_crc", "bad_pixels", "truncated", "rotated", "transparent", "too_long", "cmyk"],
)
def test_an_original_that_is_not_a_plain_photo_is_converted(data):
    try:
        expected = media.to_jpeg(data)
    except media.MediaError as exc:  # to_jpeg refuses it: so does to_photo, the same way
        with pytest.raises(media.MediaError) as caught:
            media.to_photo(data)
        assert caught.value.reason == exc.reason
        return
    assert media.to_photo(data) == (expected, "jpg")


def test_an_original_over_the_cap_is_converted_and_zero_always_converts():
    data = png((512, 512))
    assert media.to_photo(data, len(data)) == (data, "png")
    assert media.to_photo(data, len(data) - 1) == (media.to_jpeg(data), "jpg")
    assert media.to_photo(data, 0) == (media.to_jpeg(data), "jpg")
