"""kill -9 soak: a node under a concurrent write load is killed at random moments and restarted.

For each mode, ``--loops`` times: start writer threads (unique keys, in order per thread,
recording every acknowledgement and its time), SIGKILL the node after a random delay,
restart it from its own files and count what is there:

* ``always``  (appendonly yes, appendfsync always): every acknowledged write must be there;
* ``everysec`` (appendfsync everysec): reports what is missing and over how long a window
  before the kill it had been acknowledged (a process crash loses nothing written to the
  kernel: the bound of ~1 s is about the kernel/power failing, which kill -9 does not show);
* ``snapshot`` (no AOF, BGSAVE now and then): the data must be exactly a snapshot that was
  taken (a prefix per writer) and no older than the last completed BGSAVE.

    .venv/bin/python bench/kill9_soak.py --loops 200 [--mode always|everysec|snapshot|all]

Prints the figures; exits non-zero if a guarantee was broken.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from persistence_helpers import Nodes, Writers, info, present_prefix, wait_bgsave_done, wait_rewrite_done


def soak(mode: str, loops: int, seed: int, tmp: Path) -> dict[str, float]:
    rnd = random.Random(seed)
    nodes = Nodes(tmp / mode)
    args = {"always": ["--appendonly", "yes", "--appendfsync", "always"]}.get(mode, [])
    if mode == "everysec":
        args = ["--appendonly", "yes", "--appendfsync", "everysec"]
    n = nodes.node("n", "--loglevel", "warning", *args)
    acked_total = lost = broken = 0
    worst_window = 0.0
    try:
        for loop in range(loops):
            tag = f"{mode}{loop}"
            w = Writers(n.port, tag, threads=4, pipeline=rnd.choice([1, 1, 10, 50])).start()
            low = high = None
            if mode == "snapshot":
                c = n.client()
                saves = info(c, "persistence")["rdb_saves"]
                time.sleep(rnd.uniform(0.05, 0.3))
                low = [a + 1 for a in w.acked]
                c.bgsave()
                wait_bgsave_done(c, saves)
                high = [a + 1 for a in w.acked]
                c.close()
            time.sleep(rnd.uniform(0.05, 1.0))
            n.kill()
            w.stop()
            n.start(wait=False)
            n.wait_ready(120)
            c = n.client()
            for t, acked in enumerate(w.acked):
                present = present_prefix(c, tag, t, acked + w.pipeline)
                acked_total += acked + 1
                if mode == "snapshot":
                    assert low is not None and high is not None
                    if not low[t] <= present <= high[t]:
                        broken += 1
                        print(f"loop {loop}: thread {t} has {present} keys, the snapshot had {low[t]}..{high[t]}")
                    lost += acked + 1 - present  # written after the snapshot: expected to be lost
                    continue
                missing = max(0, acked + 1 - present)
                if missing:
                    lost += missing
                    worst_window = max(worst_window, w.ack_times[t][acked] - w.ack_times[t][present])
                    if mode == "always":
                        broken += 1
                        print(f"loop {loop}: thread {t} lost {missing} acknowledged writes")
            # Keep the files small, so each loop restarts about as fast as the first.
            c.flushall()
            if mode == "snapshot":
                c.save()
            else:
                rewrites = info(c, "persistence")["aof_rewrites"]
                c.bgrewriteaof()
                wait_rewrite_done(c, rewrites)
            c.close()
            if (loop + 1) % 20 == 0:
                print(f"  {mode}: {loop + 1}/{loops} kills, {acked_total} acknowledged, {lost} lost", file=sys.stderr)
    finally:
        nodes.close()
    return {"acked": acked_total, "lost": lost, "broken": broken, "worst_window_s": worst_window}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loops", type=int, default=200)
    parser.add_argument("--mode", choices=["always", "everysec", "snapshot", "all"], default="all")
    parser.add_argument("--seed", type=int, default=1)
    ns = parser.parse_args()
    modes = ["always", "everysec", "snapshot"] if ns.mode == "all" else [ns.mode]
    failed = False
    with tempfile.TemporaryDirectory(prefix="kill9-soak-") as tmp:
        for mode in modes:
            started = time.monotonic()
            r = soak(mode, ns.loops, ns.seed, Path(tmp))
            failed = failed or r["broken"] > 0
            print(
                f"{mode:9}: {ns.loops} kills, {r['acked']} acknowledged writes, {r['lost']} lost "
                f"(worst: acknowledged within {r['worst_window_s']:.3f} s before the kill), "
                f"{r['broken']} guarantee violations, {time.monotonic() - started:.0f} s"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
