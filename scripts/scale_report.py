#!/usr/bin/env python3
"""Tables (Markdown) and a plot (SVG, no dependencies) from examples/scale JSON lines.

    scale_report.py grid target/scale-grid.jsonl figures/scale.svg
    scale_report.py targets target/scale-targets.jsonl
"""
import json
import sys


def load(path):
    return [json.loads(l) for l in open(path) if l.startswith("{")]


def key(r):
    return (r["workers"], r["mean_ms"], r.get("stragglers", 0))


def grid(runs, svg_path):
    by = {}
    for r in runs:
        # One row per configuration (the grid runs each at one number of tasks).
        by.setdefault(key(r), {})[r["policy"]] = r
    print("| workers | mean task | tasks | ideal | pool efficiency | pool master busy | pool msgs "
          "| classic efficiency | classic master busy | greedy bound |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (w, m, _), p in sorted(by.items()):
        pool, classic, greedy = p.get("pool", {}), p.get("classic", {}), p.get("greedy", {})
        print(f"| {w:,} | {m:g} ms | {pool.get('tasks', 0):,} | {pool.get('ideal_s', 0):.2f} s "
              f"| {pool.get('efficiency', 0):.3f} | {pool.get('master_busy_frac', 0):.0%} "
              f"| {pool.get('master_msgs', 0):,} | {classic.get('efficiency', 0):.3f} "
              f"| {classic.get('master_busy_frac', 0):.0%} | {greedy.get('efficiency', 0):.3f} |")
    draw(by, svg_path)


def targets(runs):
    by = {}
    for r in runs:
        # One row per configuration and number of tasks (W = 100,000 runs at two).
        by.setdefault(key(r) + (r["tasks"],), {})[r["policy"]] = r
    print("| configuration | tasks | pool efficiency | greedy bound | pool / bound | master busy "
          "| master peak RSS | handshake + shutdown (master) | wall |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (w, m, s, _), p in by.items():
        pool, greedy = p.get("pool", {}), p.get("greedy", {})
        what = f"W = {w:,}, mean {m:g} ms" + (f", {s:.0%} of workers {pool.get('slowdown', 5):g}x slower" if s else "")
        ratio = pool.get("efficiency", 0) / greedy["efficiency"] if greedy else float("nan")
        print(f"| {what} | {pool.get('tasks', 0):,} | {pool.get('efficiency', 0):.3f} "
              f"| {greedy.get('efficiency', 0):.3f} | {ratio:.3f} "
              f"| {pool.get('master_busy_frac', 0):.0%} | {pool.get('master_peak_rss_mb', 0):,.0f} MB "
              f"| {pool.get('handshake_master_s', 0) * 1e3:.1f} + {pool.get('shutdown_master_s', 0) * 1e3:.1f} ms "
              f"| {pool.get('wall_s', 0):.0f} s |")


def draw(by, path):
    """Two panels: efficiency and master busy fraction against workers (log scale), one line
    per mean task time; pool solid, classic dashed, the greedy bound dotted."""
    import math
    means = sorted({m for (_, m, _) in by})
    workers = sorted({w for (w, _, _) in by})
    colours = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]
    width, height, pad = 460, 300, 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width + 40}" height="{height + 90}" '
             f'font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>']
    def x_of(w, x0):
        lo, hi = math.log10(workers[0]), math.log10(workers[-1])
        return x0 + pad + (math.log10(w) - lo) / (hi - lo or 1) * (width - 2 * pad)
    def y_of(v):
        return 20 + (1 - v) * (height - pad - 20)
    for panel, (metric, title) in enumerate([("efficiency", "efficiency (ideal / makespan)"),
                                             ("master_busy_frac", "master busy (share of makespan)")]):
        x0 = panel * (width + 40)
        parts.append(f'<text x="{x0 + width / 2}" y="14" text-anchor="middle">{title}</text>')
        for v in (0, 0.25, 0.5, 0.75, 1.0):
            y = y_of(v)
            parts.append(f'<line x1="{x0 + pad}" x2="{x0 + width - pad}" y1="{y}" y2="{y}" stroke="#ddd"/>')
            parts.append(f'<text x="{x0 + pad - 6}" y="{y + 4}" text-anchor="end">{v:g}</text>')
        for w in workers:
            x = x_of(w, x0)
            parts.append(f'<text x="{x}" y="{height - pad + 16}" text-anchor="middle">{w:,}</text>')
        parts.append(f'<text x="{x0 + width / 2}" y="{height - pad + 34}" text-anchor="middle">workers</text>')
        for i, m in enumerate(means):
            for policy, dash in (("pool", ""), ("classic", "6,4"), ("greedy", "2,3")):
                if policy == "greedy" and metric != "efficiency":
                    continue
                pts = [(x_of(w, x0), y_of(min(1.0, by[(w, m, 0)][policy][metric])))
                       for w in workers if (w, m, 0) in by and policy in by[(w, m, 0)]]
                if pts:
                    d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
                    parts.append(f'<polyline points="{d}" fill="none" stroke="{colours[i % 5]}" '
                                 f'stroke-width="2" stroke-dasharray="{dash}"/>')
    legend_y = height + 10
    for i, m in enumerate(means):
        x = 60 + i * 150
        parts.append(f'<line x1="{x}" x2="{x + 24}" y1="{legend_y}" y2="{legend_y}" stroke="{colours[i % 5]}" stroke-width="3"/>')
        parts.append(f'<text x="{x + 30}" y="{legend_y + 4}">mean {m:g} ms</text>')
    parts.append(f'<text x="60" y="{legend_y + 28}">solid: pool; dashed: classic (one task per message, one in flight); '
                 f'dotted: greedy bound (list scheduling at no cost)</text>')
    parts.append(f'<text x="60" y="{legend_y + 46}">lognormal task times (sigma 1); tasks for 10 s of ideal makespan, '
                 f'at most 2,000,000; scripts/scale.sh</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    runs = load(sys.argv[2])
    if sys.argv[1] == "grid":
        grid(runs, sys.argv[3])
    else:
        targets(runs)
