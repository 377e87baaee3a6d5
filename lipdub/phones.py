"""Phone timings from pocketsphinx, whose English models ship inside its wheel.

Lips close for /p b m/ in every language the product dubs, and a viewer sees a
bilabial that does not close at once. Two ways to find them:

- `phone_loop`: a phone recogniser with a phone-bigram model and no words, so it
  needs no transcript and does not force English words onto French or Mandarin;
  the generator uses it unless the dub is said to be English.
- `aligned_phones`: recognise English words, then force-align them to phones; more
  exact on English. The generator uses it for English dubs (`of_speech`), and the
  quality benchmark scores every English dub with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lipdub import media

RATE = 16000  # the rate pocketsphinx's acoustic model was trained at
BILABIALS = frozenset({"P", "B", "M"})
PHONE_LM = "en-us/en-us-phone.lm.bin"


@dataclass(frozen=True)
class Phone:
    name: str  # CMU ARPAbet, upper case (SIL for silence)
    start_s: float
    end_s: float


def _pcm(wav: Path) -> bytes:
    samples, _ = media.read_audio(wav, RATE, mono=True)
    return (np.clip(samples[:, 0], -1.0, 1.0) * 32767).astype(np.int16).tobytes()


def _decode(decoder, pcm: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def phone_loop(wav: Path) -> list[Phone]:
    """Phones of any speech, with no transcript (pocketsphinx allphone search)."""
    from pocketsphinx import Decoder, get_model_path

    decoder = Decoder(samprate=RATE, loglevel="FATAL", allphone=os.path.join(get_model_path(), PHONE_LM), lw=2.0, beam=1e-20, pbeam=1e-20)
    _decode(decoder, _pcm(wav))
    return [Phone(s.word, s.start_frame / 100, (s.end_frame + 1) / 100) for s in decoder.seg()]


def aligned_phones(wav: Path) -> list[Phone]:
    """English phones: words recognised, then force-aligned (two more passes over the audio).
    Empty when nothing could be aligned (silence, noise)."""
    from pocketsphinx import Decoder

    pcm = _pcm(wav)
    decoder = Decoder(samprate=RATE, loglevel="FATAL")
    _decode(decoder, pcm)
    hyp = decoder.hyp()
    if hyp is None or not hyp.hypstr.strip():
        return []
    try:
        decoder.set_align_text(hyp.hypstr)
        _decode(decoder, pcm)
        decoder.set_alignment()  # raises when the word pass found no path to align
        _decode(decoder, pcm)
    except RuntimeError:
        return []
    return [Phone(p.name, p.start / 100, (p.start + p.duration) / 100) for word in decoder.get_alignment() for p in word]


def of_speech(wav: Path, language: str | None) -> list[Phone]:
    """The best phones available for a dub: English words aligned, otherwise the phone loop."""
    if language is not None and language.lower().split("-")[0] == "en":
        return aligned_phones(wav) or phone_loop(wav)
    return phone_loop(wav)


def closure_frames(phones: list[Phone], times_s: np.ndarray, frame_s: float) -> np.ndarray:
    """(len(times),) bool: frames during a /p b m/, at least the nearest one for a short phone."""
    closed = np.zeros(len(times_s), bool)
    for p in phones:
        if p.name not in BILABIALS:
            continue
        inside = (times_s >= p.start_s) & (times_s < p.end_s)
        if not inside.any() and len(times_s):
            mid = (p.start_s + p.end_s) / 2
            j = int(np.argmin(np.abs(times_s - mid)))
            inside[j] = abs(times_s[j] - mid) <= frame_s
        closed |= inside
    return closed
