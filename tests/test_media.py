import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from bot import media


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
