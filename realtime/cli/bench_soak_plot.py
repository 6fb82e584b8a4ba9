"""``bench --soak --plot``: one picture of the run (matplotlib, an optional dependency).

Three panels over the run's time in minutes: memory (RSS, USS), frame rate (in, out) and
latency (p50, p95); every fault is a shaded span with its name, the warm-up is greyed,
and the verdict is the title.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_soak(report: dict[str, Any], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("--plot needs matplotlib: pip install matplotlib") from None
    samples = report["samples"]
    minutes = [s["t"] / 60 for s in samples]
    seconds = report["run"]["seconds"]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    series = [
        (axes[0], "memory (MB)", [("rss_mb", "RSS"), ("uss_mb", "USS")]),
        (axes[1], "frames per second", [("fps_in", "in"), ("fps_out", "out")]),
        (axes[2], "latency (ms)", [("latency_p50_ms", "p50"), ("latency_p95_ms", "p95")]),
    ]
    for ax, label, keys in series:
        for key, name in keys:
            ax.plot(minutes, [s[key] for s in samples], marker=".", label=name)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.axvspan(0, seconds * 0.1 / 60, color="0.85", zorder=0)
        for fault in report["faults"]:
            end = fault["t"] + max(5.0, fault.get("duration_s") or (fault["recovered_s"] or 0))
            ax.axvspan(fault["t"] / 60, end / 60, color="tab:red", alpha=0.15, zorder=0)
        ax.legend(loc="upper right", fontsize="small")
        ax.set_ylim(bottom=0)
    top = axes[0].get_ylim()[1]
    for fault in report["faults"]:
        axes[0].text(fault["t"] / 60, top * 0.04, fault["kind"].replace("_", " "),
                     rotation=90, fontsize=7, va="bottom", color="tab:red")
    axes[0].text(0.002, top * 0.9, "warm-up", fontsize=7, color="0.4")
    axes[2].set_xlabel("minutes")
    v = report["verdict"]
    growth = "-" if v["rss_growth"] is None else f"{v['rss_growth']:+.1%}"
    fig.suptitle(f"bench --soak {seconds:g} s: {'PASS' if v['ok'] else 'FAIL'} "
                 f"(RSS {growth} after warm-up, handles {v['fds_growth']:+d}, threads "
                 f"{v['threads_growth']:+d}, fps out drop {v['fps_out_drop']:.1%})"
                 if v["fds_growth"] is not None else
                 f"bench --soak {seconds:g} s: FAIL ({'; '.join(v['errors'])[:90]})")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
