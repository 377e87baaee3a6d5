"""The protocols every backend implements; stages depend on these, never on a backend."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


class FaceDetector(Protocol):
    name: str

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        """All faces in each RGB frame of a batch."""


class Landmarker(Protocol):
    name: str

    def landmarks(self, frame: np.ndarray) -> np.ndarray | None:
        """(478, 3) landmarks in the frame's pixels (x, y, z) for the most central face, or None."""


@dataclass
class GenerateRequest:
    """Everything a generator may use, all on the output's frame grid or the source's.

    Patches live in the canonical lower-face box (see face_geometry.mouth_box).
    """

    library: np.ndarray  # (n_source, h, w, 3) canonical lower face of every source frame
    lips: np.ndarray  # (n_source, 40, 2) canonical lip landmarks
    yaw_deg: np.ndarray  # (n_source,)
    usable: np.ndarray  # (n_source,) bool: landmarks found, frontal enough, big enough
    source_audio: np.ndarray | None  # (n_source, d) log-mel at source frame times
    source_speech: np.ndarray | None  # (n_source,) bool
    dub_audio: np.ndarray  # (n_out, d) log-mel at output frame times
    dub_speech: np.ndarray  # (n_out,) bool
    target: np.ndarray  # (n_out,) source frame shown at each output frame
    library_frames: np.ndarray | None = None  # (n_source,) bool: frames mouths may come from (default: all usable)
    dub_closures: np.ndarray | None = None  # (n_out,) bool: the dub's /p b m/, where the lips must close
    measured: np.ndarray | None = None  # (n_source,) bool: lips found on the frame itself, not interpolated (default: all)
    pose_points: np.ndarray | None = None  # (n_source, k, 2) canonical face_geometry.POSE_POINTS: how the head is pitched and turned
    # for learned generators, which draw from pixels and sound themselves:
    faces: np.ndarray | None = None  # (n_source, s, s, 3) each source frame's face, the generator's `face_box` of the canonical face at its `face_size`
    dub_wave: np.ndarray | None = None  # (samples,) the dub's analysis audio, mono
    dub_rate: int = 16000
    fps: float | None = None  # the output's frame rate


@dataclass(frozen=True)
class LazyFrames:
    """(n, h, w, c) frames made only when sliced, never held whole.

    A retrieval dub's mouths are copies of a few hundred source frames, a still image's
    are warps of one; made whole they took 0.8 GB of memory per minute of output (a 5 min
    dub peaked at 4.1 GB in generate). Sliced like the array it stands for."""

    n: int
    frame_shape: tuple[int, ...]
    take: Callable[[np.ndarray], np.ndarray]  # output frame indices -> their frames, stacked

    @classmethod
    def of_library(cls, library: np.ndarray, index: np.ndarray) -> LazyFrames:
        """Frame j is library[index[j]]."""
        return cls(len(index), tuple(library.shape[1:]), lambda idx: np.asarray(library[index[idx]]))

    @classmethod
    def made(cls, n: int, frame_shape: tuple[int, ...], make: Callable[[int], np.ndarray]) -> LazyFrames:
        """Frame j is make(j)."""
        return cls(n, tuple(frame_shape), lambda idx: np.stack([make(int(j)) for j in idx]) if len(idx) else np.zeros((0, *frame_shape), np.uint8))

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n, *self.frame_shape)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: int | slice | np.ndarray) -> np.ndarray:
        if isinstance(key, slice):
            return self.take(np.arange(self.n)[key])
        if isinstance(key, np.ndarray):  # frame indices, as an array's fancy index
            return self.take(key)
        return self.take(np.array([key]))[0]


@dataclass
class GenerateResult:
    mouths: np.ndarray | LazyFrames  # (n_out, h, w, 3) canonical lower faces, uint8
    chosen: np.ndarray  # (n_out,) source frame each mouth came from, -1 where the target is passed through
    predicted_opening: np.ndarray  # (n_out,) canonical px
    mapping: str  # "speaker" (learned from the source's own soundtrack) or "generic"
    moves: np.ndarray | None = None  # (n_out, 2, 3) canonical affine map to apply to each mouth as it is pasted (the target's pose), None: none
    lips: np.ndarray | None = None  # (n_out, 40, 2) canonical lips of each mouth as made, before its move; None: the chosen frame's as filmed


class Generator(Protocol):
    """A learned generator that draws on whole faces also has `face_box` (x0, y0, x1, y1,
    shares of the canonical side) and `face_size` (px): the generate stage then cuts that
    square of every source frame's face into `GenerateRequest.faces` as it cuts the library."""

    name: str

    def generate(self, request: GenerateRequest) -> GenerateResult:
        """A new lower face for every output frame."""


class Enhancer(Protocol):
    name: str

    def enhance(self, mouths: np.ndarray, targets: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Improve generated canonical mouths (n, h, w, 3) given the frames they will land on."""
