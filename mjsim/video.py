"""A tiny pure-Python MP4 (H.264) writer, so simulated videos are real, playable files.

The stream is H.264 Constrained Baseline using only two macroblock kinds that need no
transform or entropy coding: I_PCM (raw 8-bit YUV 4:2:0 samples) and P_Skip (copy the block
from the previous frame). The first frame is an IDR picture of I_PCM blocks; every later frame
re-sends, as I_PCM, only the 16x16 blocks that changed and skips the rest. Lossless, standard,
decodable by any H.264 decoder; small as long as little of the picture moves between frames.
"""

from __future__ import annotations

import math
import struct

from PIL import Image, ImageDraw

_LOG2_MAX_FRAME_NUM = 8
_TIMESCALE = 12288


class _Bits:
    """MSB-first bit writer with Exp-Golomb codes (H.264 §7.2, §9.1)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self._acc = 0
        self._n = 0

    def u(self, bits: int, value: int) -> None:
        for shift in range(bits - 1, -1, -1):
            self._acc = (self._acc << 1) | ((value >> shift) & 1)
            self._n += 1
            if self._n == 8:
                self.out.append(self._acc)
                self._acc = self._n = 0

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        while self._n:
            self.u(1, 0)

    def raw(self, data: bytes) -> None:
        assert self._n == 0, "raw bytes need byte alignment"
        self.out += data

    def trailing(self) -> bytes:
        """rbsp_trailing_bits(): a stop bit, then zeros to the byte boundary."""
        self.u(1, 1)
        self.align_zero()
        return bytes(self.out)


def _nal(header: int, rbsp: bytes) -> bytes:
    """A NAL unit with emulation prevention bytes inserted (§7.4.1)."""
    out = bytearray([header])
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _sps(mb_w: int, mb_h: int) -> bytes:
    b = _Bits()
    b.u(8, 66)  # profile_idc: Baseline
    b.u(8, 0xC0)  # constraint_set0 + set1: Constrained Baseline
    b.u(8, 30)  # level 3.0
    b.ue(0)  # seq_parameter_set_id
    b.ue(_LOG2_MAX_FRAME_NUM - 4)
    b.ue(2)  # pic_order_cnt_type 2: output order = decoding order
    b.ue(1)  # max_num_ref_frames
    b.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    b.ue(mb_w - 1)
    b.ue(mb_h - 1)
    b.u(1, 1)  # frame_mbs_only_flag
    b.u(1, 1)  # direct_8x8_inference_flag
    b.u(1, 0)  # frame_cropping_flag
    b.u(1, 0)  # vui_parameters_present_flag
    return _nal(0x67, b.trailing())


def _pps() -> bytes:
    b = _Bits()
    b.ue(0)  # pic_parameter_set_id
    b.ue(0)  # seq_parameter_set_id
    b.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    b.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    b.ue(0)  # num_slice_groups_minus1
    b.ue(0)  # num_ref_idx_l0_default_active_minus1
    b.ue(0)  # num_ref_idx_l1_default_active_minus1
    b.u(1, 0)  # weighted_pred_flag
    b.u(2, 0)  # weighted_bipred_idc
    b.se(0)  # pic_init_qp_minus26
    b.se(0)  # pic_init_qs_minus26
    b.se(0)  # chroma_qp_index_offset
    b.u(1, 1)  # deblocking_filter_control_present_flag (so slices can switch it off)
    b.u(1, 0)  # constrained_intra_pred_flag
    b.u(1, 0)  # redundant_pic_cnt_present_flag
    return _nal(0x68, b.trailing())


def _macroblocks(frame: Image.Image) -> list[bytes]:
    """The frame as 384-byte I_PCM payloads (16x16 luma, then 8x8 Cb and 8x8 Cr), raster order."""
    ycc = frame.convert("YCbCr")
    y, cb, cr = ycc.split()
    # Pillow converts to full-range (JPEG) YCbCr; H.264 without VUI means studio range.
    y = y.point(lambda v: 16 + v * 219 // 255)
    half = (frame.width // 2, frame.height // 2)
    cb = cb.resize(half, Image.Resampling.BOX).point(lambda v: 16 + v * 224 // 255)
    cr = cr.resize(half, Image.Resampling.BOX).point(lambda v: 16 + v * 224 // 255)
    yb, cbb, crb = y.tobytes(), cb.tobytes(), cr.tobytes()
    w, cw = frame.width, frame.width // 2
    blocks = []
    for my in range(frame.height // 16):
        for mx in range(frame.width // 16):
            luma = b"".join(
                yb[(my * 16 + r) * w + mx * 16 : (my * 16 + r) * w + mx * 16 + 16]
                for r in range(16)
            )
            chroma = b"".join(
                plane[(my * 8 + r) * cw + mx * 8 : (my * 8 + r) * cw + mx * 8 + 8]
                for plane in (cbb, crb)
                for r in range(8)
            )
            blocks.append(luma + chroma)
    return blocks


def _slice(blocks: list[bytes], previous: list[bytes] | None, frame_num: int, idr_id: int) -> bytes:
    b = _Bits()
    b.ue(0)  # first_mb_in_slice
    b.ue(7 if previous is None else 5)  # slice_type: I / P (all slices of the picture)
    b.ue(0)  # pic_parameter_set_id
    b.u(_LOG2_MAX_FRAME_NUM, frame_num % (1 << _LOG2_MAX_FRAME_NUM))
    if previous is None:
        b.ue(idr_id)  # idr_pic_id
    else:
        b.u(1, 0)  # num_ref_idx_active_override_flag
        b.u(1, 0)  # ref_pic_list_modification_flag_l0
    if previous is None:
        b.u(1, 0)  # no_output_of_prior_pics_flag
        b.u(1, 0)  # long_term_reference_flag
    else:
        b.u(1, 0)  # adaptive_ref_pic_marking_mode_flag: sliding window
    b.se(0)  # slice_qp_delta
    b.ue(1)  # disable_deblocking_filter_idc: off (the picture is lossless)
    if previous is None:
        for block in blocks:
            b.ue(25)  # mb_type I_PCM
            b.align_zero()
            b.raw(block)
    else:
        skipped = 0
        for block, old in zip(blocks, previous, strict=True):
            if block == old:
                skipped += 1
                continue
            b.ue(skipped)  # mb_skip_run
            skipped = 0
            b.ue(30)  # mb_type I_PCM inside a P slice (5 + 25)
            b.align_zero()
            b.raw(block)
        if skipped:
            b.ue(skipped)
    return _nal(0x65 if previous is None else 0x41, b.trailing())


def h264_samples(frames: list[Image.Image]) -> tuple[bytes, bytes, list[bytes]]:
    """(SPS, PPS, one NAL unit per frame). Frame sizes must be multiples of 16."""
    w, h = frames[0].size
    if w % 16 or h % 16:
        raise ValueError("frame size must be a multiple of 16")
    samples = []
    previous: list[bytes] | None = None
    for n, frame in enumerate(frames):
        blocks = _macroblocks(frame.convert("RGB"))
        samples.append(_slice(blocks, previous, n, 0))
        previous = blocks
    return _sps(w // 16, h // 16), _pps(), samples


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _moov(
    w: int, h: int, sps: bytes, pps: bytes, sizes: list[int], delta: int, offset: int
) -> bytes:
    count = len(sizes)
    duration_ts = count * delta
    duration_ms = duration_ts * 1000 // _TIMESCALE
    avcc = _box(
        b"avcC",
        bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]),
        struct.pack(">H", len(sps)),
        sps,
        bytes([1]),
        struct.pack(">H", len(pps)),
        pps,
    )
    avc1 = _box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),
        struct.pack(">HH", w, h),
        struct.pack(">II", 0x480000, 0x480000),  # 72 dpi
        bytes(4),
        struct.pack(">H", 1),  # frame_count
        bytes([8]) + b"mjbotsim".ljust(31, b"\0"),  # compressorname (Pascal string)
        struct.pack(">Hh", 0x18, -1),
        avcc,
    )
    stbl = _box(
        b"stbl",
        _full(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
        _full(b"stts", 0, 0, struct.pack(">III", 1, count, delta)),
        _full(b"stss", 0, 0, struct.pack(">II", 1, 1)),
        _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, count, 1)),
        _full(b"stsz", 0, 0, struct.pack(">II", 0, count), struct.pack(f">{count}I", *sizes)),
        _full(b"stco", 0, 0, struct.pack(">II", 1, offset)),
    )
    minf = _box(
        b"minf",
        _full(b"vmhd", 0, 1, bytes(8)),
        _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1))),
        stbl,
    )
    mdia = _box(
        b"mdia",
        _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, _TIMESCALE, duration_ts, 0x55C4, 0)),
        _full(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\0"),
        minf,
    )
    tkhd = _full(
        b"tkhd",
        0,
        3,
        struct.pack(">IIIII", 0, 0, 1, 0, duration_ms),
        bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0),
        _MATRIX,
        struct.pack(">II", w << 16, h << 16),
    )
    mvhd = _full(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, 1000, duration_ms),
        struct.pack(">IH", 0x10000, 0x100),
        bytes(10),
        _MATRIX,
        bytes(24),
        struct.pack(">I", 2),
    )
    return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))


def mp4(frames: list[Image.Image], fps: int = 12) -> bytes:
    """An MP4 file (ftyp, moov, mdat; 'faststart' layout) of the frames at ``fps``."""
    w, h = frames[0].size
    sps, pps, nals = h264_samples(frames)
    samples = [struct.pack(">I", len(nal)) + nal for nal in nals]
    sizes = [len(s) for s in samples]
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isomiso2avc1mp41")
    delta = _TIMESCALE // fps
    moov = _moov(w, h, sps, pps, sizes, delta, 0)
    offset = len(ftyp) + len(moov) + 8
    moov = _moov(w, h, sps, pps, sizes, delta, offset)
    return ftyp + moov + _box(b"mdat", *samples)


def video_size(ratio: tuple[int, int], long_side: int = 192) -> tuple[int, int]:
    """Macroblock-aligned frame size with roughly the given aspect ratio."""
    w, h = ratio
    scale = long_side / max(w, h)
    return (max(16, round(w * scale / 16) * 16), max(16, round(h * scale / 16) * 16))


def animate(still: Image.Image, seconds: float = 2.0, fps: int = 12) -> list[Image.Image]:
    """Frames of a still picture with a ball bouncing across it and a progress bar filling."""
    w, h = still.size
    count = max(2, int(seconds * fps))
    frames = []
    for n in range(count):
        frame = still.copy()
        draw = ImageDraw.Draw(frame)
        t = n / (count - 1)
        r = max(3, min(w, h) // 24)
        x = r + (w - 2 * r) * t
        y = h * 0.35 - (h * 0.25) * abs(math.sin(t * math.pi * 3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255))
        draw.rectangle((0, h - 6, int(w * t), h - 1), fill=(255, 255, 255))
        frames.append(frame)
    return frames
