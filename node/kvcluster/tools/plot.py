"""``kvcluster bench --plot``: throughput and latency over time, failovers marked (matplotlib, Agg)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kvcluster.tools.bench import BenchOptions
    from kvcluster.tools.bench_core import Recorder


def plot_run(options: BenchOptions, recorder: Recorder, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must come before pyplot
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    samples = recorder.samples
    mid = [s.start + s.length / 2 for s in samples]
    ops = [s.ops / s.length for s in samples]
    errors = [s.errors / s.length for s in samples]
    # An interval with no successful operation has no latency: leave a gap in the line.
    nan = float("nan")
    p50 = [s.latency.percentile(50) / 1000 if s.latency.count else nan for s in samples]
    p99 = [s.latency.percentile(99) / 1000 if s.latency.count else nan for s in samples]
    peak = [(s.latency.max or 0) / 1000 if s.latency.count else nan for s in samples]

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.6), sharex=True, dpi=100, height_ratios=(1, 1))
    summary = recorder.summary()
    fig.suptitle(
        f"kvcluster bench: {options.connections} connections, pipeline {options.pipeline}, "
        f"GET:SET {options.ratio[0]}:{options.ratio[1]}, {options.value_size} B values  |  "
        f"{summary['ops_per_sec']:,.0f} ops/s, p99 {summary['latency_ms']['p99']:.2f} ms",
        fontsize=10,
    )
    top.plot(mid, ops, color="tab:blue", linewidth=1.6, marker="o", markersize=2.5, label="successful ops/s")
    handles = top.get_legend_handles_labels()
    if any(errors):
        # Errors come in far smaller numbers than successes: their own axis, on the right.
        right = top.twinx()
        right.bar(mid, errors, width=options.interval * 0.8, color="tab:red", alpha=0.55, label="errors/s (right)")
        right.set_ylabel("errors / s", color="tab:red")
        right.tick_params(axis="y", colors="tab:red")
        right.set_ylim(0, max(errors) * 1.25)
        top.set_zorder(right.get_zorder() + 1)  # the throughput line over the bars
        top.patch.set_visible(False)
        extra = right.get_legend_handles_labels()
        handles = (handles[0] + extra[0], handles[1] + extra[1])
    top.set_ylabel("operations / s")
    top.set_ylim(0, max([*ops, 1.0]) * 1.3)  # headroom for the failover labels
    top.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    top.grid(True, alpha=0.3)

    bottom.plot(mid, peak, color="tab:gray", linewidth=1.0, label="max")
    bottom.plot(mid, p99, color="tab:orange", linewidth=1.6, label="p99")
    bottom.plot(mid, p50, color="tab:green", linewidth=1.6, label="p50")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms, log)")
    bottom.set_xlabel("seconds since start")
    bottom.grid(True, which="both", alpha=0.25)
    bottom.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))

    for outage in recorder.outages:
        for ax in (top, bottom):
            ax.axvspan(outage.start, outage.end, color="tab:red", alpha=0.10, linewidth=0)
    for i, change in enumerate(recorder.leader_changes):
        for ax in (top, bottom):
            ax.axvline(change.at, color="tab:red", linestyle="--", linewidth=1.2)
        top.annotate(
            f"failover: {change.old} → {change.new}",
            xy=(change.at, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -4 - 12 * (i % 2)),
            textcoords="offset points",
            va="top",
            fontsize=8,
            color="tab:red",
            bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 1.5},
        )
    if recorder.outages:
        longest = max(recorder.outages, key=lambda o: o.seconds)
        (marker,) = top.plot([], [], color="tab:red", alpha=0.25, linewidth=6)
        handles = (handles[0] + [marker], handles[1] + [f"no success ({longest.seconds:.1f} s)"])
    top.legend(*handles, loc="lower right", fontsize=8, framealpha=0.85).set_zorder(10)
    bottom.legend(loc="upper right", fontsize=8, framealpha=0.85)
    bottom.set_xlim(0, max(options.duration, recorder.elapsed))
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
