"""MediaPipe face detector and face mesh: the models ship inside the mediapipe 0.10.14 wheel."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from lipdub.models.base import Detection


# mediapipe 0.10.14 calls a protobuf API that protobuf 4.25 marks deprecated, once per frame
warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """TFLite and absl print set-up chatter from C++ straight to fd 2; hide it while loading."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class MediaPipeDetector:
    name = "mediapipe"

    def __init__(self, min_confidence: float = 0.5):
        with _quiet_native_stderr():
            from mediapipe.python.solutions import face_detection

            # short-range first (close-ups, where the full-range model misses faces),
            # full-range for frames where it finds nothing (small, distant faces)
            self._models = [face_detection.FaceDetection(model_selection=m, min_detection_confidence=min_confidence) for m in (0, 1)]
            for model in self._models:
                model.process(np.zeros((64, 64, 3), np.uint8))

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        out = []
        for rgb in frames:
            h, w = rgb.shape[:2]
            detections = []
            for model in self._models:
                detections = model.process(rgb).detections or []
                if detections:
                    break
            faces = []
            for det in detections:
                bb = det.location_data.relative_bounding_box
                x0, y0 = bb.xmin * w, bb.ymin * h
                faces.append(Detection((x0, y0, x0 + bb.width * w, y0 + bb.height * h), float(det.score[0])))
            out.append(faces)
        return out


class MediaPipeLandmarker:
    name = "mediapipe"

    def __init__(self) -> None:
        with _quiet_native_stderr():
            from mediapipe.python.solutions import face_mesh

        with _quiet_native_stderr():
            self._model = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3)
            self._model.process(np.zeros((64, 64, 3), np.uint8))

    def landmarks(self, frame: np.ndarray) -> np.ndarray | None:
        h, w = frame.shape[:2]
        result = self._model.process(frame)
        if not result.multi_face_landmarks:
            return None
        pts = result.multi_face_landmarks[0].landmark
        return np.array([(p.x * w, p.y * h, p.z * w) for p in pts], dtype=np.float32)
