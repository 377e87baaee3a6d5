"""The one config schema. Presets and user files are YAML validated against it on load.

Each stage reads only its own section, so the stage cache key can hash exactly the
settings that can change a stage's artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lipdub import LipdubError
from lipdub.infra import storage

MANIFESTS_FOLDER = "manifests"  # inside the work directory, unless manifest_dir says otherwise


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyncMode(str, Enum):
    """How the output's length follows the dub when the two lengths differ."""

    auto = "auto"  # bounce when the dub is longer than the video, cut_off when shorter
    cut_off = "cut_off"
    loop = "loop"
    bounce = "bounce"
    silence = "silence"


class ProbeConfig(_Section):
    vfr_tolerance: float = Field(0.02, description="relative spread of frame durations above which a stream is VFR")
    fps_mismatch_tolerance: float = Field(0.01, description="relative declared-vs-actual fps difference that raises a flag")
    duration_mismatch_s: float = Field(0.1, description="video/audio duration difference that raises a flag")


class AudioConfig(_Section):
    analysis_sample_rate: int = 16000
    denoise: bool = True
    denoise_strength: float = Field(0.8, ge=0.0, le=1.0)
    peak_dbfs: float = -3.0
    silence_threshold_db: float = Field(-45.0, description="frames this far below the loudest 1 % (dB) count as silence")
    min_speech_ratio: float = Field(0.02, description="below this speech ratio the audio is rejected as having no speech")


class FaceConfig(_Section):
    detector: str = "mediapipe"
    chunk_frames: int = Field(64, ge=1)
    min_confidence: float = Field(0.75, ge=0.0, le=1.0, description="real faces score 0.85-0.97; textures can reach 0.7")
    track_iou: float = Field(0.3, description="min IoU with the previous box to stay on the same track")
    padding: float = Field(0.25, description="crop padding as a fraction of the face size")
    min_face_px: int = Field(48, description="faces smaller than this (height, px) are flagged and passed through")
    point: tuple[float, float] | None = Field(None, description="x, y (px) on the face to dub when several are visible; default: the largest")


class StabilizeConfig(_Section):
    landmarker: str = "mediapipe"
    smooth_pose_frames: int = Field(7, ge=1, description="odd window for smoothing the rigid face transform")
    smooth_lips_frames: int = Field(3, ge=1, description="odd window for smoothing lip landmarks (small: closures are short)")
    max_yaw_deg: float = Field(45.0, description="faces turned further than this are flagged as profile and passed through")
    every_nth: int = Field(1, ge=1, description="run the landmarker on every nth frame and interpolate between (fast preset)")


class GenerateConfig(_Section):
    backend: str = "retrieval"
    canonical_size: int | None = Field(None, ge=64, description="side of the canonical face image, px; default: the face's own resolution")
    max_canonical_size: int | None = Field(None, ge=64, description="when the side follows the face: at most this many px (a smaller face keeps its own)")
    # 2 frames each side (130 features from 26 mel bands) where 4 were (234): learnt on the
    # source's own 3-7 s of speech, the mapping predicted its lips on held-out stretches at
    # r 0.57 against 0.51 (mean over the five media clips; 0.45 at 6)
    context_frames: int = Field(2, ge=0, description="audio context on each side of a frame for the audio-to-mouth model")
    # strong shrinkage: a speaker mapping from 5-10 s of footage follows noise in the
    # audio at 10 (jittery mouths, 1.4-1.5x frame-to-frame change on anchor-man); at 100
    # the predicted mouth is smoother and more predictable from the dub (benchmarks/quality.py)
    ridge_alpha: float = Field(100.0, gt=0, description="ridge penalty of the speaker's audio-to-mouth mapping")
    candidates: int = Field(24, description="source frames considered per output frame in unit selection")
    jump_cost: float = Field(0.6, description="cost of leaving a run of consecutive source frames")
    look_weight: float = Field(1.0, ge=0.0, description="cost of a cut between two source frames per mean difference in how their lower faces look (light, shadow); 0: shapes alone")
    shape_follow: float = Field(0.5, ge=0.0, le=1.0, description="how far each chosen source mouth is warped towards the lip shape the dub's sound asks for (0: shown as filmed, 1: all the way)")
    mask_feather_px: float = Field(9.0, description="feather of the lower-face mask written with each mouth, canonical px")
    fit_jaw: bool = Field(True, description="warp each pasted lower face so its jaw line lands on the target frame's (no second jaw line where the heads were turned or tipped differently)")
    close_bilabials: bool = Field(True, description="close the lips on /p b m/ of the dub, found by a phone recogniser (pocketsphinx)")
    dub_language: str | None = Field(None, description="language of the dub ('en', 'fr', ...); English /p b m/ are found from recognised words, others by phones alone")
    weights: Path | None = Field(None, description="checkpoint of a learned backend (wav2lip: the 96 px Wav2Lip generator in its release format); never downloaded")

    @model_validator(mode="after")
    def _learned_needs_weights(self) -> GenerateConfig:
        if self.backend != "retrieval" and self.weights is None:
            raise ValueError(f"the {self.backend} backend needs generate.weights (its checkpoint); lipdub downloads none")
        return self


class EnhanceConfig(_Section):
    backend: str = "classical"
    sharpen: float = Field(0.15, ge=0.0, description="unsharp-mask amount (more makes lips harder than the source)")
    match_lips: bool = Field(True, description="give red lips the lightness of the target frame's lips, not only its skin's")
    shading: float = Field(0.05, ge=0.0, description="match the light across the lower face to the target frame's, smoothed over this share of the mouth patch's width (0: one match for the whole region)")
    weights: Path | None = None


class BlendConfig(_Section):
    pyramid_levels: int = Field(4, ge=1)
    chunk_frames: int = Field(64, ge=1, description="frames per encoded segment")
    crf: int = Field(18, ge=0, le=51, description="H.264 CRF; with fidelity_db, the highest it may be")
    fidelity_db: float | None = Field(45.5, gt=0, description="lower the CRF (not below min_crf) until the middle of the source, encoded alone, keeps this PSNR (dB); null: always crf")
    min_crf: int = Field(10, ge=0, le=51)
    fidelity_frames: int = Field(24, ge=1, description="frames from the middle of the clip a trial encode measures")
    preset: str = "veryfast"

    @model_validator(mode="after")
    def _crf_range(self) -> BlendConfig:
        if self.min_crf > self.crf:
            raise ValueError(f"min_crf ({self.min_crf}) is above crf ({self.crf})")
        return self


class RemuxConfig(_Section):
    sync_mode: SyncMode = SyncMode.auto
    audio_bitrate: int = 192_000


class DriftConfig(_Section):
    max_lag_frames: int = 15
    window_s: float = 4.0
    hop_s: float = 1.0
    fine_frames: int = 2
    noticeable_frames: int = 5
    calibration_frames: float = Field(0.0, description="subtracted from every measured offset; real in-sync clips average this")
    slide_above_frames: float = Field(1.0, ge=0.0, description="doctor --fix slides an offset above this, even within fine_frames")


class RayConfig(_Section):
    """Where chunk work and models run. None of this changes a stage's artifacts."""

    enabled: bool | None = Field(None, description="run models on Ray actors; default: yes for batches, no for a single clip")
    address: str | None = Field(None, description="None starts a local Ray; 'auto' or 'ray://head:10001' joins a cluster")
    workers: int | None = Field(None, ge=1, description="model-hosting actors; default: one per GPU, else one per CPU")
    gpus_per_worker: float | None = Field(None, ge=0, description="default: 1 when the cluster has GPUs, else 0 (CPU)")
    start_timeout_s: float = Field(120.0, gt=0, description="how long to wait for the workers to be scheduled")


class StorageConfig(_Section):
    """How s3:// (or any fsspec URL) is reached; credentials come from the standard AWS variables."""

    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, ...); default: AWS_ENDPOINT_URL or AWS")
    region: str | None = None
    anon: bool = False
    scratch_dir: Path | None = Field(None, description="local working copies when work_dir is remote; default: <tmp>/lipdub-scratch")


class Config(_Section):
    """Everything a run can be told. Unknown keys are errors, not silently ignored."""

    preset: str = "default"
    probe: ProbeConfig = ProbeConfig()
    audio: AudioConfig = AudioConfig()
    face: FaceConfig = FaceConfig()
    stabilize: StabilizeConfig = StabilizeConfig()
    generate: GenerateConfig = GenerateConfig()
    enhance: EnhanceConfig = EnhanceConfig()
    blend: BlendConfig = BlendConfig()
    remux: RemuxConfig = RemuxConfig()
    drift: DriftConfig = DriftConfig()
    ray: RayConfig = RayConfig()
    storage: StorageConfig = StorageConfig()
    work_dir: str = Field("lipdub-work", description="stage artifacts and cache: a local folder or a URL (s3://bucket/prefix)")
    manifest_dir: str | None = Field(None, description="Parquet dataset root, local or a URL; default <work_dir>/manifests")

    @field_validator("work_dir", "manifest_dir", mode="before")
    @classmethod
    def _location(cls, value: Any) -> Any:
        """Locations are strings so they can hold URLs; a Path is taken as it is."""
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    def for_clip(self, sync_mode: SyncMode | None = None, face: tuple[float, float] | None = None, language: str | None = None) -> Config:
        """This config with one clip's own options (command-line flags or job file columns)."""
        update: dict[str, Any] = {}
        if language is not None:
            update["generate"] = self.generate.model_copy(update={"dub_language": language})
        if sync_mode is not None:
            update["remux"] = self.remux.model_copy(update={"sync_mode": sync_mode})
        if face is not None:
            update["face"] = self.face.model_copy(update={"point": face})
        return self.model_copy(update=update)

    def section_hash(self, name: str) -> str:
        """Stable hash of one section ("blend") or one setting ("generate.canonical_size"), for
        stage cache keys: a stage keyed on a setting of another stage's section reruns when
        that setting changes, not when the rest of that section does."""
        section, _, setting = name.partition(".")
        value = getattr(self, section)
        return _digest(getattr(value, setting) if setting else value.model_dump(mode="json"))

    def config_hash(self) -> str:
        return _digest(self.model_dump(mode="json", exclude={"work_dir", "manifest_dir", "ray", "storage"}))

    @property
    def manifests(self) -> Path | str:
        """The manifest root: a Path when local (as callers have always had it), else the URL."""
        root = self.manifest_dir or storage.join(self.work_dir, MANIFESTS_FOLDER)
        return root if storage.is_remote(root) else Path(root)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def first_error(exc: ValidationError) -> str:
    """'where: what' of a validation failure's first error: one line a user can act on."""
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


def preset_names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in resources.files("lipdub.configs").iterdir() if p.name.endswith(".yaml"))


def _read_yaml(source: Path | str, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise LipdubError(source, f"not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise LipdubError(source, "config must be a mapping of sections")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(path: Path | None = None, preset: str | None = None, **overrides: Any) -> Config:
    """Preset (default: the file's `preset:` key, else "default"), then the user file, then overrides."""
    user: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise LipdubError(path, "config file not found")
        user = _read_yaml(path, path.read_text())
    name = preset or user.get("preset") or "default"
    if name not in preset_names():
        raise LipdubError(name, f"unknown preset (known: {', '.join(preset_names())})")
    preset_file = resources.files("lipdub.configs") / f"{name}.yaml"
    data = _merge(_read_yaml(name, preset_file.read_text()), user)
    data = _merge(data, {k: v for k, v in overrides.items() if v is not None})
    data["preset"] = name
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise LipdubError(path or name, f"invalid config at {first_error(exc)}") from exc
