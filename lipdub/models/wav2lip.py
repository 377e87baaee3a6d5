"""wav2lip: a Wav2Lip-compatible learned generator (Prajwal et al., ACM MM 2020), weights from the user.

The network is the published 96 px generator, layer for layer, so a checkpoint in its
release format loads as it is: a dict whose "state_dict" holds the weights, their
names with or without DataParallel's "module." prefix. Nothing is downloaded: without a
checkpoint the backend refuses to load.

Each output frame's target face (forehead to chin of the canonical face, 96 px, its
lower half blanked, beside the same face whole) and 0.2 s of the dub's mel spectrogram from that
frame on give a new face; its lower half is the mouth, landing in the canonical mouth
box as any generator's mouths do, for enhance and blend to finish.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from scipy.signal import lfilter
from torch import nn

from lipdub import LipdubError
from lipdub import face_geometry as fg
from lipdub.models.base import GenerateRequest, GenerateResult, LazyFrames

FACE_SIZE = 96  # px: the network's input and output face
# the square of the canonical face it sees (shares of the side: x0, y0, x1, y1): forehead
# to just below the chin, as the face detector's crops it was trained on frame a face
# (the canonical face spans 0.12-0.88 of the side from hairline to chin)
FACE_BOX = (0.1, 0.12, 0.9, 0.92)
MEL_RATE, MEL_BANDS, MEL_STEPS = 16000, 80, 16  # its audio: 80 mel bands, 80 columns a second, 0.2 s a frame
BATCH = 32  # faces per forward pass


class _Conv(nn.Module):
    """Convolution, batch norm, ReLU; the input added back before the ReLU when `residual`."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int | tuple[int, int], padding: int, residual: bool = False, transpose: bool = False, output_padding: int = 0):
        super().__init__()
        conv = nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding) if transpose else nn.Conv2d(cin, cout, kernel, stride, padding)
        self.conv_block = nn.Sequential(conv, nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        return self.act(out + x if self.residual else out)


def _down(cin: int, cout: int, stride: int | tuple[int, int], residuals: int, kernel: int = 3, padding: int = 1) -> list[nn.Module]:
    """One convolution that changes the size, then `residuals` that keep it."""
    return [_Conv(cin, cout, kernel, stride, padding)] + [_Conv(cout, cout, 3, 1, 1, residual=True) for _ in range(residuals)]


def _up(cin: int, cout: int, residuals: int, stride: int = 2, padding: int = 1, output_padding: int = 1) -> nn.Sequential:
    return nn.Sequential(_Conv(cin, cout, 3, stride, padding, transpose=True, output_padding=output_padding), *[_Conv(cout, cout, 3, 1, 1, residual=True) for _ in range(residuals)])


class Wav2LipNet(nn.Module):
    """The generator: a face encoder whose every scale feeds the decoder, an audio encoder
    whose 1 x 1 code starts it. Attribute names follow the release checkpoints."""

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(_Conv(6, 16, 7, 1, 3)),  # 96
            nn.Sequential(*_down(16, 32, 2, 2)),  # 48
            nn.Sequential(*_down(32, 64, 2, 3)),  # 24
            nn.Sequential(*_down(64, 128, 2, 2)),  # 12
            nn.Sequential(*_down(128, 256, 2, 2)),  # 6
            nn.Sequential(*_down(256, 512, 2, 1)),  # 3
            nn.Sequential(_Conv(512, 512, 3, 1, 0), _Conv(512, 512, 1, 1, 0)),  # 1
        ])
        self.audio_encoder = nn.Sequential(
            *_down(1, 32, 1, 2), *_down(32, 64, (3, 1), 2), *_down(64, 128, 3, 2), *_down(128, 256, (3, 2), 1),
            _Conv(256, 512, 3, 1, 0), _Conv(512, 512, 1, 1, 0),
        )
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(_Conv(512, 512, 1, 1, 0)),  # 1
            _up(1024, 512, 1, stride=1, padding=0, output_padding=0),  # 3
            _up(1024, 512, 2),  # 6
            _up(768, 384, 2),  # 12
            _up(512, 256, 2),  # 24
            _up(320, 128, 2),  # 48
            _up(160, 64, 2),  # 96
        ])
        self.output_block = nn.Sequential(_Conv(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, mels: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
        """mels (B, 1, 80, 16), faces (B, 6, 96, 96) in 0..1 -> faces (B, 3, 96, 96) in 0..1."""
        skips = []
        x = faces
        for block in self.face_encoder_blocks:
            x = block(x)
            skips.append(x)
        x = self.audio_encoder(mels)
        for block in self.face_decoder_blocks:
            x = torch.cat([block(x), skips.pop()], dim=1)
        return self.output_block(x)


def load_network(weights: str | Path | None) -> Wav2LipNet:
    """The network with a release-format checkpoint's weights, in inference mode."""
    if not weights:
        raise LipdubError("generate.weights", "the wav2lip backend needs a Wav2Lip checkpoint (generate.weights); none is downloaded")
    path = Path(weights)
    if not path.is_file():
        raise LipdubError(path, "no such Wav2Lip checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem to the user
        raise LipdubError(path, f"not a readable PyTorch checkpoint ({exc.__class__.__name__})") from exc
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise LipdubError(path, "not a Wav2Lip checkpoint (no state_dict)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net = Wav2LipNet()
    missing, unexpected = [sorted(set(a) - set(b)) for a, b in ((net.state_dict(), state), (state, net.state_dict()))]
    if missing or unexpected:
        raise LipdubError(path, f"not the 96 px Wav2Lip generator: {len(missing)} weights missing (e.g. {missing[:1]}), {len(unexpected)} unknown (e.g. {unexpected[:1]})")
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise LipdubError(path, f"weights of the wrong shape for the 96 px Wav2Lip generator ({str(exc).splitlines()[-1].strip()})") from exc
    return net.eval()


def mel_spectrogram(wave: np.ndarray, rate: int = MEL_RATE) -> np.ndarray:
    """(80, columns) the mel spectrogram the network was trained on: pre-emphasis 0.97,
    800-sample frames 200 apart at 16 kHz, 55-7600 Hz, dB over -100, scaled to -4..4."""
    import librosa

    if rate != MEL_RATE:
        wave = librosa.resample(np.asarray(wave, np.float32), orig_sr=rate, target_sr=MEL_RATE)
    emphasised = lfilter([1, -0.97], [1], np.asarray(wave, np.float64))
    spectrum = np.abs(librosa.stft(y=emphasised.astype(np.float32), n_fft=800, hop_length=200, win_length=800))
    bank = librosa.filters.mel(sr=MEL_RATE, n_fft=800, n_mels=MEL_BANDS, fmin=55, fmax=7600)
    db = 20 * np.log10(np.maximum(1e-5, bank @ spectrum)) - 20
    return np.clip(8 * (db + 100) / 100 - 4, -4, 4).astype(np.float32)


def mel_windows(mel: np.ndarray, n: int, fps: float) -> np.ndarray:
    """(n, 80, 16) the 0.2 s of mel from each output frame's start (the last 0.2 s past the end)."""
    columns = mel.shape[1]
    if columns < MEL_STEPS:
        mel = np.pad(mel, ((0, 0), (0, MEL_STEPS - columns)), constant_values=-4.0)
        columns = MEL_STEPS
    start = np.minimum((np.arange(n) * MEL_BANDS / fps).astype(int), columns - MEL_STEPS)
    return np.stack([mel[:, s : s + MEL_STEPS] for s in start])


class Wav2LipGenerator:
    name = "wav2lip"
    face_size, face_box = FACE_SIZE, FACE_BOX  # the generate stage hands over each source frame's face, this box of it at this size

    def __init__(self, weights: str | None = None):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.net = load_network(weights).to(self.device)

    def faces_for(self, faces: np.ndarray, mels: np.ndarray) -> np.ndarray:
        """(n, 96, 96, 3) RGB faces for (n, 96, 96, 3) RGB target faces and (n, 80, 16) mel windows."""
        out = np.empty_like(faces)
        for a in range(0, len(faces), BATCH):
            bgr = faces[a : a + BATCH, :, :, ::-1].astype(np.float32) / 255  # trained on OpenCV's BGR frames
            blanked = bgr.copy()
            blanked[:, FACE_SIZE // 2 :] = 0
            x = torch.from_numpy(np.concatenate([blanked, bgr], axis=3)).permute(0, 3, 1, 2).to(self.device)
            m = torch.from_numpy(mels[a : a + BATCH, None]).to(self.device)
            with torch.inference_mode():
                y = self.net(m, x).permute(0, 2, 3, 1).cpu().numpy()
            out[a : a + BATCH] = np.clip(np.round(y[..., ::-1] * 255), 0, 255).astype(np.uint8)
        return out

    def generate(self, req: GenerateRequest) -> GenerateResult:
        if req.faces is None or req.dub_wave is None or req.fps is None:
            raise ValueError("the wav2lip generator needs the request's faces, dub_wave and fps")
        n = len(req.target)
        has_face = req.usable[req.target]
        mels = mel_windows(mel_spectrogram(req.dub_wave, req.dub_rate), n, req.fps)
        h, w = req.library.shape[1:3]
        size = fg.side_of_mouth_box(h)
        mx0, my0, _, _ = fg.mouth_box(size)
        # where the lower half the network draws lands in the mouth box (patch px), cut to it
        bx0, by0, bx1, by1 = FACE_BOX
        left, top = round(bx0 * size) - mx0, round((by0 + by1) / 2 * size) - my0
        drawn_w, drawn_h = round((bx1 - bx0) * size), round((by1 - by0) / 2 * size)
        rows, cols = slice(max(top, 0), min(top + drawn_h, h)), slice(max(left, 0), min(left + drawn_w, w))

        def take(idx: np.ndarray) -> np.ndarray:
            patches = np.stack([np.asarray(req.library[req.target[j]]) for j in idx]) if len(idx) else np.zeros((0, h, w, 3), np.uint8)
            mine = [k for k, j in enumerate(idx) if has_face[j]]
            if mine:
                made = self.faces_for(np.stack([np.asarray(req.faces[req.target[idx[k]]]) for k in mine]), mels[idx[mine]])
                for k, face in zip(mine, made):
                    lower = cv2.resize(face[FACE_SIZE // 2 :], (drawn_w, drawn_h), interpolation=cv2.INTER_CUBIC)
                    patches[k, rows, cols] = lower[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left]
            return patches

        chosen = np.where(has_face, req.target, -1)
        return GenerateResult(mouths=LazyFrames(n, (h, w, 3), take), chosen=chosen, predicted_opening=np.full(n, np.nan, np.float32), mapping="wav2lip")
