"""MediaPipe face detector and face mesh: the models ship inside the mediapipe 0.10.14 wheel."""

from __future__ import annotations

import numpy as np

from lipdub.models.base import Detection


class MediaPipeDetector:
    name = "mediapipe"

    def __init__(self, min_confidence: float = 0.5):
        from mediapipe.python.solutions import face_detection

        # full-range model: talking heads range from close-ups to wide shots
        self._model = face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_confidence)

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        out = []
        for rgb in frames:
            h, w = rgb.shape[:2]
            result = self._model.process(rgb)
            faces = []
            for det in result.detections or []:
                bb = det.location_data.relative_bounding_box
                x0, y0 = bb.xmin * w, bb.ymin * h
                faces.append(Detection((x0, y0, x0 + bb.width * w, y0 + bb.height * h), float(det.score[0])))
            out.append(faces)
        return out


class MediaPipeLandmarker:
    name = "mediapipe"

    def __init__(self) -> None:
        from mediapipe.python.solutions import face_mesh

        self._model = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3)

    def landmarks(self, frame: np.ndarray) -> np.ndarray | None:
        h, w = frame.shape[:2]
        result = self._model.process(frame)
        if not result.multi_face_landmarks:
            return None
        pts = result.multi_face_landmarks[0].landmark
        return np.array([(p.x * w, p.y * h, p.z * w) for p in pts], dtype=np.float32)
