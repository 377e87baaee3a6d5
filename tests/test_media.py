"""media: probing, frame-accurate chunked decode, segment encode and remux."""

import ctypes
import ctypes.util
import hashlib
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from lipdub import LipdubError, media


def test_probe_reports_frames_rate_and_audio(talking_face):
    info = media.probe(talking_face.video_path)
    assert info.video.n_frames == talking_face.n_frames == 100
    assert info.video.actual_fps == pytest.approx(25.0, rel=1e-3)
    assert info.audio is not None and info.audio.duration_s == pytest.approx(4.0, abs=0.05)


def test_seeking_decode_gives_the_same_frames_as_a_full_decode(talking_face):
    stream = media.probe(talking_face.video_path).video
    everything = {i: f for i, f in media.read_frames(talking_face.video_path, stream)}
    chunk = list(media.read_frames(talking_face.video_path, stream, 37, 45))
    assert [i for i, _ in chunk] == list(range(37, 45))
    for i, frame in chunk:
        assert np.array_equal(frame, everything[i])


def test_chunked_reads_resume_a_parked_decoder_and_give_the_frames_of_one_pass(talking_face):
    stream = media.probe(talking_face.video_path).video
    everything = [f for _, f in media.read_frames(talking_face.video_path, stream)]
    chunked = [f for a in range(0, stream.n_frames, 16) for _, f in media.read_frames(talking_face.video_path, stream, a, a + 16)]
    assert len(chunked) == len(everything) and all(np.array_equal(a, b) for a, b in zip(chunked, everything))
    mine = lambda: [d.next_index for k, d in media._PARKED.items() if k[0] == str(talking_face.video_path.resolve())]  # noqa: E731
    assert mine() == [stream.n_frames]  # the last read parked at the end
    again = list(media.read_frames(talking_face.video_path, stream, 40, 42))  # not where it stopped: seeks afresh
    assert [i for i, _ in again] == [40, 41] and np.array_equal(again[0][1], everything[40])
    assert mine() == [42]
    early = media.read_frames(talking_face.video_path, stream, 42, 60)  # resumes the decoder parked at 42
    assert np.array_equal(next(early)[1], everything[42])
    early.close()  # stopped early: closed, never parked half-way
    assert mine() == []


def test_sequence_decode_follows_a_bounce(talking_face):
    stream = media.probe(talking_face.video_path).video
    order = [95, 96, 97, 98, 99, 98, 97, 96, 95, 94]
    frames = list(media.read_frame_sequence(talking_face.video_path, stream, order))
    direct = {i: f for i, f in media.read_frames(talking_face.video_path, stream, 94, 100)}
    assert all(np.array_equal(f, direct[i]) for f, i in zip(frames, order))


@pytest.mark.parametrize("fps", [Fraction(25), Fraction(30000, 1001), Fraction(1350, 61)])
def test_segments_join_into_one_cfr_stream_with_audio(tmp_path, fps):
    segs = []
    for k in range(3):
        path = tmp_path / f"{k}.mp4"
        with media.SegmentWriter(path, 64, 48, fps) as w:
            for i in range(10):
                w.write(np.full((48, 64, 3), 20 * k + i, np.uint8))
        segs.append(path)
    audio = np.zeros((int(30 / float(fps) * 48000), 2), np.float32)
    out = tmp_path / "out.mp4"
    media.remux(segs, audio, 48000, out, fps)
    info = media.probe(out)
    assert info.video.n_frames == 30
    assert info.video.actual_fps == pytest.approx(float(fps), rel=1e-3)
    times = np.diff(info.video.frame_times_s)
    assert np.allclose(times, 1 / float(fps), atol=1e-3)  # constant frame rate across segment joins
    assert info.audio.duration_s == pytest.approx(30 / float(fps), abs=0.05)


def _write_vfr(path, n_frames: int, long_every: int):
    """30 fps ticks; every `long_every`-th frame lasts two ticks."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        s.codec_context.time_base = Fraction(1, 30)
        pts = 0
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 4 % 256, np.uint8), format="rgb24")
            frame.pts = pts
            pts += 2 if i % long_every == 0 else 1
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


def test_vfr_timestamps_change_the_actual_rate(tmp_path):
    v = media.probe(_write_vfr(tmp_path / "vfr.mp4", 40, 2)).video
    assert v.n_frames == 40
    assert v.actual_fps == pytest.approx(40 / (60 / 30), rel=0.05)  # 20 long + 20 short frames over 2 s


def test_unreadable_file_is_a_named_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(LipdubError, match="not a readable media file") as info:
        media.probe(bad)
    assert str(bad) in str(info.value)


def test_probe_flags_vfr_and_a_wrong_declared_rate(tmp_path, dub_wav):
    from lipdub.infra.config import ProbeConfig
    from lipdub.tasks.probe import probe

    path = _write_vfr(tmp_path / "vfr.mp4", 60, 3)
    rec = probe(path, dub_wav, ProbeConfig())
    assert rec.vfr and "vfr" in rec.flags
    assert rec.actual_fps < 0.9 * rec.declared_fps and "fps_declared_mismatch" in rec.flags
    assert "source_no_audio" in rec.flags


def test_remux_with_audio_puts_the_first_sample_under_the_first_frame(talking_face, tmp_path):
    samples, rate = media.read_audio(talking_face.video_path)
    out = tmp_path / "re.mp4"
    media.remux_with_audio(talking_face.video_path, samples, rate, out)
    info = media.probe(out)
    played, _ = media.read_audio(out)
    corr = np.correlate(played[: len(samples), 0], samples[: len(samples) - 4096, 0], mode="valid")
    priming_s = int(np.argmax(corr)) / rate
    assert abs(info.audio.start_time_s + priming_s - info.video.start_time_s) < 0.002
    assert info.video.n_frames == talking_face.n_frames


def _encode_lossless(path, frames, sources, width, height):
    with media.SegmentWriter(path, width, height, Fraction(25), crf=0) as writer:
        for rgb, source in zip(frames, sources):
            writer.write(rgb, source)
    return [f for _, f in media.read_frames(path, media.probe(path).video)]


def test_unchanged_pixels_are_encoded_from_the_source_planes(talking_face, tmp_path):
    stream = media.probe(talking_face.video_path).video
    sources = [f for _, f in media.read_frames(talking_face.video_path, stream, 0, 6, planes=True)]
    assert all(s.yuv420 is not None for s in sources)
    edited = []
    for s in sources:
        rgb = s.rgb.copy()
        rgb[100:140, 60:120] = 255 - rgb[100:140, 60:120]
        edited.append(rgb)
    via_planes = _encode_lossless(tmp_path / "planes.mp4", edited, sources, stream.width, stream.height)
    via_rgb = _encode_lossless(tmp_path / "rgb.mp4", edited, [None] * len(edited), stream.width, stream.height)
    outside = np.ones(edited[0].shape[:2], bool)
    outside[98:142, 58:122] = False  # the edit and the chroma blocks it touches
    for out, s in zip(via_planes, sources):
        assert np.array_equal(out[outside], s.rgb[outside])  # lossless: the source's own pixels come back
    assert not all(np.array_equal(out[outside], s.rgb[outside]) for out, s in zip(via_rgb, sources))  # an RGB round trip does not
    inside = np.abs(via_planes[0][104:136, 64:116].astype(int) - edited[0][104:136, 64:116].astype(int))
    assert inside.mean() < 3  # the changed pixels are the edit's


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_source_planes_are_turned_upright_with_the_rgb(rotation):
    rng = np.random.default_rng(rotation)
    frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8), format="rgb24").reformat(format="yuv420p")
    source = media._source_frame(frame, rotation)
    upright = av.VideoFrame.from_ndarray(source.yuv420, format="yuv420p").to_ndarray(format="rgb24")
    assert upright.shape == source.rgb.shape == ((80, 48, 3) if rotation % 180 else (48, 80, 3))
    assert np.array_equal(upright, source.rgb)


LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None)


def _leave_on_heap(byte: int) -> None:
    """Allocate blocks of many sizes, fill them with `byte` and free them: what the next
    allocations may be handed, as after other work in the same process."""
    LIBC.malloc.restype, LIBC.malloc.argtypes, LIBC.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
    sizes = [1 << k for k in range(8, 21) for _ in range(8)]
    blocks = [LIBC.malloc(size) for size in sizes]
    for block, size in zip(blocks, sizes):
        ctypes.memset(block, byte, size)
    for block in blocks:
        LIBC.free(block)


@pytest.mark.skipif(not hasattr(LIBC, "mallopt"), reason="needs glibc's malloc")
def test_the_same_frames_encode_to_the_same_bytes_whatever_the_heap_held(tmp_path):
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (264, 264, 3), dtype=np.uint8), (0, 0), 3)
    frames = []
    for i in range(40):  # a moving texture with a disc crossing it: work for the lookahead
        dx, dy = int(8 + 6 * np.sin(i / 5)), int(8 + 6 * np.cos(i / 7))
        frame = np.ascontiguousarray(texture[dy : dy + 200, dx : dx + 200])
        cv2.circle(frame, (100 + int(40 * np.sin(i / 3)), 100), 40 + i % 7 * 3, (200, 60, 60), -1)
        frames.append(frame)
    digests = set()
    for byte in (0x00, 0xFF, 0x55, 0xAA):
        _leave_on_heap(byte)
        path = tmp_path / f"{byte}.mp4"
        with media.SegmentWriter(path, 200, 200, Fraction(25)) as writer:
            for frame in frames:
                writer.write(frame)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
