"""The wav2lip backend: release-format checkpoints load, the network is driven by the dub's
sound, and a whole clip dubs with it. Weights are random, made here in the real format."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lipdub import LipdubError, samples  # noqa: E402
from lipdub.infra.clip_run import ClipRun  # noqa: E402
from lipdub.infra.config import load_config  # noqa: E402
from lipdub.infra.layout import STAGES  # noqa: E402
from lipdub.models import registry  # noqa: E402
from lipdub.models.base import GenerateRequest  # noqa: E402
from lipdub.models.wav2lip import FACE_SIZE, Wav2LipGenerator, Wav2LipNet, mel_spectrogram, mel_windows  # noqa: E402
from lipdub.tasks import run_stages  # noqa: E402


def _checkpoint(path, seed: int = 0, prefix: str = "module.", drop: str | None = None):
    """Random weights saved as the release checkpoints are: DataParallel names under
    "state_dict", beside the optimizer's state and the step count. Scaled for ReLUs (He et
    al.), with batch-norm statistics random too, as a trained network's are: PyTorch's
    default initialisation shrinks the sound's code to nothing over twenty layers."""
    torch.manual_seed(seed)
    net = Wav2LipNet()
    for layer in net.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", mode="fan_in" if isinstance(layer, torch.nn.Conv2d) else "fan_out")
            torch.nn.init.normal_(layer.bias, 0, 0.05)
    state = net.state_dict()
    for name, value in state.items():
        if name.endswith("running_mean"):
            value.normal_(0, 0.1)
        elif name.endswith("running_var"):
            value.uniform_(0.5, 1.5)
    weights = {prefix + k: v for k, v in state.items() if k != drop}
    torch.save({"state_dict": weights, "optimizer": {}, "global_step": 1000, "global_epoch": 3}, path)
    return path


def _request(n: int, rng: np.random.Generator, wave: np.ndarray, size: int = 128) -> GenerateRequest:
    h, w = size // 2, int(0.9 * size) - int(0.1 * size)
    usable = np.ones(n, bool)
    usable[3] = False  # a frame without a usable face passes through
    return GenerateRequest(
        library=rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8), lips=np.zeros((n, 40, 2), np.float32), yaw_deg=np.zeros(n), usable=usable,
        source_audio=None, source_speech=None, dub_audio=np.zeros((n, 26), np.float32), dub_speech=np.ones(n, bool), target=np.arange(n),
        faces=rng.integers(0, 255, (n, FACE_SIZE, FACE_SIZE, 3), dtype=np.uint8), dub_wave=wave, dub_rate=16000, fps=25.0,
    )


def test_the_mel_spectrogram_is_the_networks_own_a_tone_lands_in_its_band():
    t = np.arange(16000) / 16000
    mel = mel_spectrogram(0.5 * np.sin(2 * np.pi * 1000 * t))
    assert mel.shape == (80, 81)  # 80 columns a second (and the centred last one)
    assert mel.min() >= -4 and mel.max() <= 4
    import librosa

    centres = librosa.mel_frequencies(n_mels=82, fmin=55, fmax=7600)[1:-1]
    assert abs(int(mel[:, 40].argmax()) - int(np.abs(centres - 1000).argmin())) <= 1
    windows = mel_windows(mel, 25, 25.0)
    assert windows.shape == (25, 80, 16)
    assert np.array_equal(windows[1], mel[:, 3:19])  # frame 1 starts 3.2 columns in
    assert np.array_equal(windows[-1], mel[:, -16:])  # past the end: the last 0.2 s


def test_a_release_checkpoint_loads_and_its_mouths_follow_the_sound(tmp_path):
    ckpt = _checkpoint(tmp_path / "wav2lip.pth")
    gen = Wav2LipGenerator(str(ckpt))
    rng = np.random.default_rng(0)
    n = 8
    speech = 0.3 * np.random.default_rng(1).normal(size=n * 640).astype(np.float32)
    req = _request(n, rng, speech)
    result = gen.generate(req)
    mouths = result.mouths[np.arange(n)]
    assert mouths.shape == (n, *req.library.shape[1:]) and mouths.dtype == np.uint8
    assert list(result.chosen) == [0, 1, 2, -1, 4, 5, 6, 7] and result.mapping == "wav2lip"
    assert np.array_equal(mouths[3], req.library[3])  # no face: the frame's own lower face, untouched
    assert not np.array_equal(mouths[0], req.library[0])
    assert np.array_equal(gen.generate(req).mouths[np.arange(n)], mouths)  # the same sound, the same mouths
    quiet = gen.generate(_request(n, np.random.default_rng(0), np.zeros_like(speech))).mouths[np.arange(n)]
    assert np.abs(quiet.astype(int) - mouths).mean() > 0.5  # the network hears the dub
    # the checkpoint's weights, not fresh ones: another seed's weights draw other mouths
    other = Wav2LipGenerator(str(_checkpoint(tmp_path / "other.pth", seed=1, prefix=""))).generate(req).mouths[np.arange(n)]
    assert np.abs(other.astype(int) - mouths).mean() > 0.5


def test_a_checkpoint_that_is_not_the_generator_is_refused_naming_the_file(tmp_path):
    with pytest.raises(LipdubError, match="missing"):
        Wav2LipGenerator(str(_checkpoint(tmp_path / "partial.pth", drop="output_block.1.weight")))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(LipdubError, match="junk.pth: not a readable PyTorch checkpoint"):
        Wav2LipGenerator(str(junk))
    with pytest.raises(LipdubError, match="no such Wav2Lip checkpoint"):
        Wav2LipGenerator(str(tmp_path / "absent.pth"))
    with pytest.raises(LipdubError, match="needs generate.weights"):
        load_config(generate={"backend": "wav2lip"})


def test_a_clip_dubs_end_to_end_with_the_learned_backend(tmp_path):
    face = samples.make_talking_face(tmp_path / "face.mp4", duration_s=2.0, fps=25, size=256, seed=2)
    envelope = samples.speech_envelope(2.0, 25, seed=5)
    dub = samples.write_wav(tmp_path / "dub.wav", samples.synth_speech(envelope, 25, 16000, seed=5), 16000)
    cfg = load_config(work_dir=tmp_path / "work", generate={"backend": "wav2lip", "weights": str(_checkpoint(tmp_path / "w.pth"))})
    run = ClipRun.start(face.video_path, dub, tmp_path / "out.mp4", cfg)
    run_stages(run, STAGES)
    record = run.records["generate"]
    assert record.backend == "wav2lip" and record.mapping == "wav2lip" and record.frames_generated >= 45
    assert run.layout.artifact("remux", "output.mp4").is_file()
    library = np.load(run.layout.artifact("generate", "library.npy"), mmap_mode="r")
    mouths = np.load(run.layout.artifact("generate", "mouths.npy"), mmap_mode="r")
    chosen = np.load(run.layout.artifact("generate", "selection.npz"))["chosen"]
    j = int(np.flatnonzero(chosen >= 0)[0])
    assert chosen[j] == j  # each frame's mouth is drawn on that frame's own face
    assert np.abs(mouths[j].astype(int) - library[j]).mean() > 1.0
    assert registry.LOADS.get(("generator", "wav2lip"), 0) >= 1
    # new weights at the same path: generate and what follows are redone, the rest reused
    _checkpoint(tmp_path / "w.pth", seed=9)
    again = ClipRun.start(face.video_path, dub, tmp_path / "out.mp4", cfg)
    run_stages(again, STAGES[: STAGES.index("enhance")])
    assert "stabilize" in again.cached and "generate" not in again.cached
    assert not np.array_equal(np.load(again.layout.artifact("generate", "mouths.npy"))[j], mouths[j])


def test_the_drawn_lower_half_lands_where_the_faces_own_lower_face_is(tmp_path, monkeypatch):
    # a network that handed back the face it was given would put back each frame's own
    # lower face, softened by the 96 px round trip: the face and the mouth box line up
    face = samples.make_talking_face(tmp_path / "face.mp4", duration_s=1.0, fps=25, size=256, seed=4, separate_audio_path=tmp_path / "own.wav")
    cfg = load_config(work_dir=tmp_path / "work", generate={"backend": "wav2lip", "weights": str(_checkpoint(tmp_path / "w.pth"))})
    monkeypatch.setattr(Wav2LipGenerator, "faces_for", lambda self, faces, mels: faces)
    run = ClipRun.start(face.video_path, face.audio_path, tmp_path / "out.mp4", cfg)
    run_stages(run, STAGES[: STAGES.index("generate") + 1])
    library = np.load(run.layout.artifact("generate", "library.npy"), mmap_mode="r").astype(float)
    mouths = np.load(run.layout.artifact("generate", "mouths.npy"), mmap_mode="r").astype(float)
    chosen = np.load(run.layout.artifact("generate", "selection.npz"))["chosen"]
    h = library.shape[1]
    drawn = slice(h // 10, 8 * h // 10)  # rows the network's lower half covers (and some the library keeps either side)
    for j in np.flatnonzero(chosen >= 0)[::5]:
        assert not np.array_equal(mouths[j, drawn], library[j, drawn])  # drawn, not the library's own pixels
        same = np.corrcoef(mouths[j, drawn].ravel(), library[j, drawn].ravel())[0, 1]
        shifted = np.corrcoef(mouths[j, drawn][4:].ravel(), library[j, drawn][:-4].ravel())[0, 1]  # 4 px off
        assert same > 0.9 and same > shifted
