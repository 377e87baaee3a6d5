"""The picture a person wants first: offset over time against the tolerance bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lipdub.sync import SyncResult


def plot_offsets(result: SyncResult, out_png: Path, title: str, fine: int = 2, noticeable: int = 5, after: SyncResult | None = None, names: tuple[str, str] = ("before", "after")) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    end = max([w.end_s for w in result.windows] + [1.0])
    offsets = [abs(w.offset_frames) for res in (result, after) if res is not None for w in res.windows]
    limit = max([15.0] + [np.ceil(o) + 1 for o in offsets if np.isfinite(o)])
    ax.axhspan(-fine, fine, color="#d8f0d8", label=f"fine (<= {fine} frames)")
    for sign in (1, -1):
        ax.axhspan(sign * fine, sign * noticeable, color="#f8ecc8", label="noticeable" if sign > 0 else None)
        ax.axhspan(sign * noticeable, sign * limit, color="#f6d4d0", label="unacceptable" if sign > 0 else None)
    for res, colour, name in ((result, "#1f4e9c", names[0]), (after, "#2e7d32", names[1])):
        if res is None or not res.windows:
            continue
        t = [(w.start_s + w.end_s) / 2 for w in res.windows]
        ax.plot(t, [w.offset_frames for w in res.windows], "o-", color=colour, label=f"{name}: window offsets")
        if res.sync_class == "growing_drift" and np.isfinite(res.offset_at_zero_frames):  # the fitted drift line
            t0, t1 = res.windows[0].start_s, res.windows[-1].end_s
            ax.plot([t0, t1], [res.offset_at(t) for t in (t0, t1)], "--", color=colour, lw=1,
                    label=f"{name}: drift {res.drift_frames_per_min:+.1f} frames/min")
        else:
            ax.axhline(res.offset_frames, color=colour, ls="--", lw=1, label=f"{name}: {res.offset_frames:+.1f} frames, {res.sync_class}")
    ax.set_xlim(0, end)
    ax.set_ylim(-limit, limit)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("offset (frames, + = audio late)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)  # below: never over the data
    fig.tight_layout()
    fig.savefig(out_png, bbox_inches="tight")
    plt.close(fig)
