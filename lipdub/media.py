"""Media I/O over PyAV: probe, frame-accurate decode in chunks, segment encode, remux.

The one module that talks to FFmpeg. Frames are RGB uint8 arrays, upright (any
rotation metadata is applied on decode), indexed by their position in presentation
order; audio is float32 (samples, channels).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile

from lipdub import LipdubError


@dataclass(frozen=True)
class VideoStreamInfo:
    codec: str
    width: int  # upright, after rotation
    height: int
    rotation_deg: int
    declared_fps: float  # r_frame_rate / average_rate as written in the container
    frame_pts: tuple[int, ...]  # presentation timestamps in stream time_base, sorted
    time_base: Fraction
    start_time_s: float
    stream_duration_s: float  # 0 when the container does not say

    @property
    def n_frames(self) -> int:
        return len(self.frame_pts)

    @property
    def frame_times_s(self) -> np.ndarray:
        """Presentation time of each frame, relative to the first."""
        pts = np.asarray(self.frame_pts, dtype=np.float64)
        return (pts - pts[0]) * float(self.time_base) if len(pts) else pts

    @property
    def actual_fps(self) -> float:
        """Frame count over the stream's duration (else over the pts span)."""
        if self.stream_duration_s > 0:
            return self.n_frames / self.stream_duration_s
        if self.n_frames < 2:
            return self.declared_fps
        span = float((self.frame_pts[-1] - self.frame_pts[0]) * self.time_base)
        return (self.n_frames - 1) / span if span > 0 else self.declared_fps

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.actual_fps if self.actual_fps > 0 else 0.0


@dataclass(frozen=True)
class AudioStreamInfo:
    codec: str
    sample_rate: int
    channels: int
    duration_s: float
    start_time_s: float


@dataclass(frozen=True)
class MediaInfo:
    path: str
    format: str
    video: VideoStreamInfo | None
    audio: AudioStreamInfo | None

    def frame_times_in_audio_s(self) -> np.ndarray:
        """Each video frame's time measured from the first decoded audio sample.

        Stream start times differ (B-frame delay, AAC priming, edit lists); sync
        analysis must compare frames and samples on this common clock.
        """
        assert self.video is not None
        audio_start = self.audio.start_time_s if self.audio else self.video.start_time_s
        return self.video.frame_times_s + self.video.start_time_s - audio_start


def _open(path: Path | str) -> av.container.InputContainer:
    path = Path(path)
    if not path.exists():
        raise LipdubError(path, "file not found")
    if path.is_dir():
        raise LipdubError(path, "is a directory, not a media file")
    if path.stat().st_size == 0:
        raise LipdubError(path, "file is empty")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as exc:
        raise LipdubError(path, f"not a readable media file ({exc.strerror or exc.__class__.__name__})") from exc


def _rotation(stream: av.video.stream.VideoStream, container: av.container.InputContainer) -> int:
    for frame in container.decode(stream):
        return int(round(getattr(frame, "rotation", 0) or 0)) % 360
    return 0


def probe(path: Path | str) -> MediaInfo:
    """Read stream facts; video frame timestamps come from demuxed packets (no decode)."""
    with _open(path) as container:
        video = audio = None
        if container.streams.video:
            vs = container.streams.video[0]
            pts = sorted(p.pts for p in container.demux(vs) if p.pts is not None and p.size > 0)
            container.seek(0)
            rotation = _rotation(vs, container)
            width, height = vs.codec_context.width, vs.codec_context.height
            if rotation in (90, 270):
                width, height = height, width
            rate = vs.average_rate or vs.guessed_rate or vs.base_rate or 0
            video = VideoStreamInfo(
                codec=vs.codec_context.name,
                width=width,
                height=height,
                rotation_deg=rotation,
                declared_fps=float(vs.guessed_rate or rate),
                frame_pts=tuple(pts),
                time_base=vs.time_base,
                start_time_s=float((vs.start_time or 0) * vs.time_base),
                stream_duration_s=float(vs.duration * vs.time_base) if vs.duration else 0.0,
            )
        if container.streams.audio:
            aus = container.streams.audio[0]
            dur = float(aus.duration * aus.time_base) if aus.duration else 0.0
            if not dur:
                samples = sum(f.samples for f in container.decode(aus))
                dur = samples / aus.codec_context.sample_rate
            audio = AudioStreamInfo(
                codec=aus.codec_context.name,
                sample_rate=aus.codec_context.sample_rate,
                channels=aus.codec_context.channels,
                duration_s=dur,
                start_time_s=float((aus.start_time or 0) * aus.time_base),
            )
        return MediaInfo(str(path), container.format.name, video, audio)


def _upright(frame: av.VideoFrame, rotation: int) -> np.ndarray:
    rgb = frame.to_ndarray(format="rgb24")
    return np.ascontiguousarray(np.rot90(rgb, k=rotation // 90)) if rotation else rgb


@dataclass(frozen=True)
class SourceFrame:
    """A decoded frame as RGB, with the 4:2:0 planes it was decoded from when the stream
    is yuv420p (upright, as the RGB).

    An encoder given the planes encodes every pixel the RGB leaves unchanged from the
    source's own Y, U and V, so those pixels lose only what the encoder takes: a second
    trip through RGB (chroma upsampled, rounded, subsampled again) costs about 2.5 dB."""

    rgb: np.ndarray
    yuv420: np.ndarray | None  # (h * 3 // 2, w) uint8: Y rows, then U, then V


def _source_frame(frame: av.VideoFrame, rotation: int) -> SourceFrame:
    rgb = _upright(frame, rotation)
    if frame.format.name != "yuv420p" or frame.width % 2 or frame.height % 2:
        return SourceFrame(rgb, None)
    planes = frame.to_ndarray(format="yuv420p")
    if rotation:
        y, u, v = _split_planes(planes, frame.height, frame.width)
        y, u, v = (np.rot90(p, k=rotation // 90) for p in (y, u, v))
        planes = np.concatenate([p.reshape(-1) for p in (y, u, v)]).reshape(-1, y.shape[1])
    return SourceFrame(rgb, np.ascontiguousarray(planes))


def _split_planes(planes: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y (h, w), U and V (h/2, w/2) views of PyAV's yuv420p array (the planes end to end)."""
    flat = planes.reshape(-1)
    q = (h // 2) * (w // 2)
    return flat[: h * w].reshape(h, w), flat[h * w : h * w + q].reshape(h // 2, w // 2), flat[h * w + q :].reshape(h // 2, w // 2)


class _Decoder:
    """An open decoder and the index of the frame it will give next."""

    def __init__(self, path: Path | str, info: VideoStreamInfo, start: int) -> None:
        self.container = _open(path)
        vs = self.container.streams.video[0]
        vs.thread_type = "AUTO"
        if start > 0:
            self.container.seek(info.frame_pts[start], stream=vs, backward=True)
        self.frames = self.container.decode(vs)
        self.next_index = start


_PARKED: dict[tuple[str, int, int], _Decoder] = {}  # per process: decoders left where a read stopped
_MAX_PARKED = 4


def _file_key(path: Path | str) -> tuple[str, int, int]:
    stat = Path(path).stat()
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns


def _decoder(path: Path | str, info: VideoStreamInfo, start: int) -> tuple[tuple[str, int, int], _Decoder]:
    """The parked decoder if it stopped right before `start`, else a new one sought there.

    Chunked reads of one file come in order (start = the previous stop); resuming saves
    decoding from the keyframe again, which in a one-keyframe clip is the first frame."""
    key = _file_key(path) if Path(path).exists() else (str(path), -1, -1)
    parked = _PARKED.pop(key, None)
    if parked is not None and parked.next_index == start:
        return key, parked
    if parked is not None:
        parked.container.close()
    return key, _Decoder(path, info, start)


def _park(key: tuple[str, int, int], decoder: _Decoder) -> None:
    _PARKED[key] = decoder
    while len(_PARKED) > _MAX_PARKED:
        _PARKED.pop(next(iter(_PARKED))).container.close()


def read_frames(path: Path | str, info: VideoStreamInfo, start: int = 0, stop: int | None = None, planes: bool = False) -> Iterator[tuple[int, np.ndarray]] | Iterator[tuple[int, SourceFrame]]:
    """Yield (index, rgb) for frames [start, stop), seeking to the keyframe before `start`
    unless the previous read of this file stopped right there. With `planes`, (index,
    SourceFrame) instead: the RGB and the source's own 4:2:0 planes, for re-encoding."""
    convert = _source_frame if planes else _upright
    stop = info.n_frames if stop is None else min(stop, info.n_frames)
    if start >= stop:
        return
    index_of = {pts: i for i, pts in enumerate(info.frame_pts)}
    key, decoder = _decoder(path, info, start)
    finished = False
    try:
        for frame in decoder.frames:
            i = index_of.get(frame.pts)
            if i is None or i < start:
                continue
            yield i, convert(frame, info.rotation_deg)
            if i + 1 >= stop:
                decoder.next_index, finished = i + 1, True
                return
    finally:
        if finished:
            _park(key, decoder)
        else:  # stopped early or ran out: where it stands is unknown
            decoder.container.close()


def read_frame_sequence(path: Path | str, info: VideoStreamInfo, indices: Sequence[int], planes: bool = False) -> Iterator[np.ndarray] | Iterator[SourceFrame]:
    """Frames in the order of `indices` (which may loop or run backwards), decoding each run
    once; with `planes`, as SourceFrame (see read_frames)."""
    i = 0
    while i < len(indices):
        j = i + 1
        step = indices[j] - indices[i] if j < len(indices) else 1
        if step not in (1, -1):
            step = 1
        while j < len(indices) and indices[j] - indices[j - 1] == step:
            j += 1
        run = list(indices[i:j])
        lo, hi = min(run), max(run) + 1
        if step == 1:
            yield from (frame for _, frame in read_frames(path, info, lo, hi, planes))
        else:  # backwards: decode forward in blocks from the end, emit reversed
            block = 32
            for b_hi in range(hi, lo, -block):
                b_lo = max(lo, b_hi - block)
                yield from reversed([frame for _, frame in read_frames(path, info, b_lo, b_hi, planes)])
        i = j


def read_audio(path: Path | str, sample_rate: int | None = None, mono: bool = False) -> tuple[np.ndarray, int]:
    """Decode the first audio stream to float32 (samples, channels), optionally resampled by FFmpeg."""
    with _open(path) as container:
        if not container.streams.audio:
            raise LipdubError(path, "has no audio stream")
        stream = container.streams.audio[0]
        rate = sample_rate or stream.codec_context.sample_rate
        layout = "mono" if mono else ("stereo" if stream.codec_context.channels >= 2 else "mono")
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except av.error.FFmpegError as exc:
            raise LipdubError(path, f"audio stream cannot be decoded ({exc.strerror})") from exc
    n_ch = 1 if layout == "mono" else 2
    samples = np.concatenate(chunks, axis=1).T if chunks else np.zeros((0, n_ch), np.float32)
    return np.ascontiguousarray(samples, dtype=np.float32), rate


def write_wav(path: Path | str, samples: np.ndarray, sample_rate: int) -> None:
    """Write float32 PCM WAV (lossless, any rate/channels, zero samples allowed)."""
    samples = samples.reshape(len(samples), -1) if samples.size else np.zeros((0, 1), np.float32)
    soundfile.write(str(path), samples.astype(np.float32), sample_rate, subtype="FLOAT", format="WAV")


def fps_fraction(fps: float) -> Fraction:
    """A frame rate as a small exact fraction (30000/1001, 1350/61, 25)."""
    return Fraction(fps).limit_denominator(1001)


M_PERTURB = -6  # glibc mallopt(3)


@functools.cache
def _fill_new_heap_memory() -> bool:
    """Have malloc fill every block it hands out with one fixed byte (glibc's M_PERTURB).

    x264's macroblock-tree lookahead reads heap memory it has not written: the same
    frames, encoded after the heap was left holding other bytes, come out as other
    bytes, and two runs of one dub differed in a few pixels at the picture's edges.
    With new memory always the same, an encode is a function of its frames alone (a
    60 s dub took no longer and peaked no higher). Elsewhere than glibc this does nothing."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    mallopt = getattr(libc, "mallopt", None)
    return bool(mallopt and mallopt(M_PERTURB, 0x5A))


class SegmentWriter:
    """Encode RGB frames to an H.264 (yuv420p, CFR) video-only MP4 segment; the same
    frames give the same bytes, whatever ran in the process before."""

    def __init__(self, path: Path | str, width: int, height: int, fps: Fraction, crf: int = 18, preset: str = "veryfast"):
        _fill_new_heap_memory()
        self._out = av.open(str(path), "w", format="mp4")
        self._stream = self._out.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": preset})
        self._stream.width, self._stream.height = width - width % 2, height - height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = 1 / fps
        self._n = 0

    def write(self, rgb: np.ndarray, source: SourceFrame | None = None) -> None:
        """Encode one RGB frame. Given the source frame it was made from, pixels equal to
        the source's are taken from the source's own planes (chroma: every 2x2 block with
        no changed pixel), so only changed pixels go through a colour conversion."""
        h, w = self._stream.height, self._stream.width
        if source is not None and source.yuv420 is not None and source.rgb.shape[:2] == (h, w):
            frame = av.VideoFrame.from_ndarray(_merge_planes(rgb, source), format="yuv420p")
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
        frame.pts = self._n
        self._n += 1
        for packet in self._stream.encode(frame):
            self._out.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        self._out.close()

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def psnr_db(sq_err: float, count: int) -> float:
    """PSNR of 8-bit samples from their summed squared error (inf when nothing differs)."""
    return float(10 * np.log10(255.0**2 * count / sq_err)) if count and sq_err > 0 else float("inf")


def transcode_psnr_db(frames: Sequence[SourceFrame], fps: Fraction, crf: int, preset: str, scratch: Path) -> float:
    """PSNR (RGB, every pixel, pooled over the frames) of source frames after one H.264
    encode at `crf`, the way SegmentWriter encodes them: what that CRF costs this footage."""
    h, w = frames[0].rgb.shape[:2]
    trial = scratch / f".trial-crf{crf}.mp4"
    try:
        with SegmentWriter(trial, w, h, fps, crf, preset) as writer:
            for frame in frames:
                writer.write(frame.rgb, frame)
        sq, count = 0.0, 0
        with _open(trial) as container:
            for frame, decoded in zip(frames, container.decode(video=0)):
                rgb = decoded.to_ndarray(format="rgb24")
                d = rgb.astype(np.float64) - frame.rgb[: rgb.shape[0], : rgb.shape[1]]
                sq, count = sq + float((d**2).sum()), count + d.size
    finally:
        trial.unlink(missing_ok=True)
    return psnr_db(sq, count)


def _merge_planes(rgb: np.ndarray, source: SourceFrame) -> np.ndarray:
    """The source's 4:2:0 planes with the changed pixels (and chroma blocks) of `rgb` put in;
    the RGB frame is converted only when something changed (a passed-through frame is not)."""
    # elementwise ORs of the channels: any() over a 3-long axis took 10 ms a 700 px frame, this 1
    ne = (rgb != source.rgb).view(np.uint8)
    changed = (ne[..., 0] | ne[..., 1] | ne[..., 2]) != 0
    out = source.yuv420.copy()
    if not changed.any():
        return out
    h, w = changed.shape
    converted = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").to_ndarray(format="yuv420p")
    c = changed.view(np.uint8)
    block = (c[0::2, 0::2] | c[1::2, 0::2] | c[0::2, 1::2] | c[1::2, 1::2]) != 0
    for plane_out, plane_new, where in zip(_split_planes(out, h, w), _split_planes(converted, h, w), (changed, block, block)):
        np.copyto(plane_out, plane_new, where=where)
    return out


def remux(segments: Sequence[Path], audio: np.ndarray, sample_rate: int, out_path: Path | str, fps: Fraction, audio_bitrate: int = 192_000) -> None:
    """Concatenate H.264 segments (packet copy, no re-encode) and mux AAC audio.

    MP4 with +faststart and avoid_negative_ts=make_zero, so no player shifts the audio
    against the picture; timestamps are rewritten as a constant frame rate.
    """
    options = {"movflags": "+faststart", "avoid_negative_ts": "make_zero"}
    with av.open(str(out_path), "w", format="mp4", options=options) as out:
        first = av.open(str(segments[0]))
        v_out = out.add_stream_from_template(first.streams.video[0])
        tick = _tick(fps)
        v_out.time_base = tick
        a_out = _aac_stream(out, audio, sample_rate, audio_bitrate)
        first.close()
        offset_frames = 0
        for seg in segments:
            with av.open(str(seg)) as src:
                packets = _frame_packets(src)
                for packet in _as_constant_rate(packets, offset_frames, tick):
                    packet.stream = v_out
                    out.mux(packet)
                offset_frames += len(packets)
        _encode_audio(out, a_out, audio, sample_rate)


def _tick(fps: Fraction) -> Fraction:
    """A time base of 512 ticks a frame: exact for any rate (the muxer may rebase it)."""
    return Fraction(fps.denominator, fps.numerator * 512)


def _frame_packets(container: av.container.InputContainer) -> list[av.Packet]:
    """The first video stream's packets that carry a frame, in decode order."""
    return [p for p in container.demux(container.streams.video[0]) if p.pts is not None and p.size > 0]


def _as_constant_rate(packets: list[av.Packet], first_frame: int, tick: Fraction) -> Iterator[av.Packet]:
    """Re-stamp one stream's packets as frames first_frame, first_frame + 1, ... at 512 ticks each.

    Presentation order gives pts; decode order, less the stream's B-frame delay, gives
    dts, so dts never passes pts and keeps rising across joined segments."""
    shown = {pts: i for i, pts in enumerate(sorted(p.pts for p in packets))}
    reorder = max([0] + [k - shown[p.pts] for k, p in enumerate(packets)])
    for k, p in enumerate(packets):
        index = shown[p.pts]
        p.time_base = tick
        p.pts, p.dts, p.duration = (first_frame + index) * 512, (first_frame + k - reorder) * 512, 512
        yield p


def _aac_stream(out: av.container.OutputContainer, audio: np.ndarray, sample_rate: int, bitrate: int) -> av.audio.stream.AudioStream:
    stream = out.add_stream("aac", rate=sample_rate, layout="mono" if audio.shape[1] == 1 else "stereo")
    stream.bit_rate = bitrate
    return stream


def _encode_audio(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, audio: np.ndarray, sample_rate: int) -> None:
    """Encode (samples, channels) float audio from t=0 and mux it."""
    layout = "mono" if audio.shape[1] == 1 else "stereo"
    planar = np.ascontiguousarray(audio.T.astype(np.float32))
    for start in range(0, planar.shape[1], 1024):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar[:, start : start + 1024]), format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def time_stretch(samples: np.ndarray, sample_rate: int, tempo: float) -> np.ndarray:
    """Play `tempo` times faster with the pitch kept (FFmpeg's atempo, WSOLA); (n, ch) float32."""
    from av.filter import Graph

    layout = "mono" if samples.shape[1] == 1 else "stereo"
    graph = Graph()
    source = graph.add_abuffer(format="fltp", sample_rate=sample_rate, layout=layout)
    stretch = graph.add("atempo", f"{tempo:.6f}")
    sink = graph.add("abuffersink")
    source.link_to(stretch)
    stretch.link_to(sink)
    graph.configure()
    planar = np.ascontiguousarray(samples.T.astype(np.float32))
    out: list[np.ndarray] = []

    def drain() -> None:
        while True:
            try:
                frame = graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            data = frame.to_ndarray()  # planar: (ch, n); packed (interleaved): (1, n * ch)
            out.append(data if frame.format.is_planar else data.reshape(-1, samples.shape[1]).T)

    for start in range(0, planar.shape[1], 4096):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar[:, start : start + 4096]), format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return np.concatenate(out, axis=1).T.astype(np.float32) if out else np.zeros((0, samples.shape[1]), np.float32)


def shift_audio(samples: np.ndarray, sample_rate: int, delay_s: float) -> np.ndarray:
    """Delay (positive) or advance (negative) audio, keeping its length: silence fills the gap."""
    n = int(round(abs(delay_s) * sample_rate))
    if n == 0:
        return samples
    pad = np.zeros((min(n, len(samples)), samples.shape[1]), samples.dtype)
    if delay_s > 0:
        return np.concatenate([pad, samples[: len(samples) - len(pad)]])
    return np.concatenate([samples[len(pad) :], pad])


def remux_with_audio(video: Path | str, audio: np.ndarray, sample_rate: int, out_path: Path | str, fps: Fraction | None = None, audio_bitrate: int = 192_000) -> None:
    """The video stream of `video` (packet copy, or retimed to a constant `fps`) with new audio.

    The audio's first sample plays with the first frame. Retiming keeps every frame and
    rewrites timestamps as i / fps: a clip whose declared rate is wrong, or which is
    variable-rate, plays at its real constant rate. Written like every lipdub output:
    +faststart, avoid_negative_ts=make_zero.
    """
    options = {"movflags": "+faststart", "avoid_negative_ts": "make_zero"}
    with av.open(str(video)) as src, av.open(str(out_path), "w", format="mp4", options=options) as out:
        vs = src.streams.video[0]
        v_out = out.add_stream_from_template(vs)
        if fps is not None:
            tick = _tick(fps)
            v_out.time_base = tick
        a_out = _aac_stream(out, audio, sample_rate, audio_bitrate)
        packets = _frame_packets(src)
        if fps is not None:
            packets = list(_as_constant_rate(packets, 0, tick))
        else:  # the first frame shows at 0, where the new audio starts
            first = min((p.pts for p in packets), default=0)
            for p in packets:
                p.pts, p.dts = p.pts - first, (p.dts - first) if p.dts is not None else None
        for p in packets:
            p.stream = v_out
            out.mux(p)
        _encode_audio(out, a_out, audio, sample_rate)
