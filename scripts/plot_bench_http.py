#!/usr/bin/env python3
"""Draws the end-to-end HTTP benchmark (the CSV scripts/bench.sh http writes)
as an SVG bar chart and prints the README's Markdown table.

    python3 scripts/plot_bench_http.py docs/bench-http.csv docs/bench-http.svg

Standard library only. One panel per token mix (one token repeated,
distinct tokens), HS256 and ES256 side by side in each, one bar per
variant: requests per second, labelled with the ratio to the plain decode
and the p99 latency. With several rounds in the CSV, each figure is the
median of the rounds.
"""

import csv
import statistics
import sys
from xml.sax.saxutils import escape

VARIANTS = [
    ("revoke", "jwt-revoke RevokeLayer", "#2b7bba"),
    ("decode", "jsonwebtoken::decode, no revocation", "#9a9a9a"),
    ("redis", "decode + Redis denylist GET", "#d9534f"),
]
ALGORITHMS = [("hs256", "HS256"), ("es256", "ES256")]
MIXES = [("repeat", "one token repeated"), ("distinct", "distinct tokens")]


def load(path):
    """One row per (algorithm, variant, token mix): the median of each
    measure over the rounds."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    runs = {}
    for r in rows:
        runs.setdefault((r["algorithm"], r["variant"], r["tokens"]), []).append(r)
    out = {}
    for key, rs in runs.items():
        row = {
            m: str(round(statistics.median(int(r[m]) for r in rs)))
            for m in ("requests_per_s", "p50_us", "p99_us")
        }
        row["rounds"] = str(len(rs))
        hits = [float(r["verified_hit_pct"]) for r in rs if r.get("verified_hit_pct")]
        row["verified_hit_pct"] = f"{statistics.median(hits):.0f}" if hits else ""
        out[key] = row
    return out


def latency(us, digits=2):
    us = int(us)
    return f"{us / 1000:.{digits}f} ms" if us >= 1000 else f"{us} µs"


def table(data):
    mixes = [m for m in MIXES if any(k[2] == m[0] for k in data)]
    head = ["algorithm", "variant"]
    for _, label in mixes:
        head += [f"req/s ({label})", "vs decode", "p50", "p99"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for alg, alg_label in ALGORITHMS:
        for variant, label, _ in VARIANTS:
            cells = [alg_label, label]
            for mix, _ in mixes:
                r = data.get((alg, variant, mix))
                base = data.get((alg, "decode", mix))
                if r is None:
                    cells += ["—"] * 4
                    continue
                ratio = (
                    f"{int(r['requests_per_s']) / int(base['requests_per_s']):.2f}×"
                    if base
                    else "—"
                )
                cells += [
                    f"{int(r['requests_per_s']):,}",
                    ratio,
                    latency(r["p50_us"]),
                    latency(r["p99_us"]),
                ]
            lines.append("| " + " | ".join(cells) + " |")
    hits = [
        f"{alg_label} {label}: {data[(alg, 'revoke', mix)]['verified_hit_pct']} %"
        for alg, alg_label in ALGORITHMS
        for mix, label in mixes
        if data.get((alg, "revoke", mix), {}).get("verified_hit_pct")
    ]
    if hits:
        lines.append("")
        lines.append(
            "Requests of the jwt-revoke variant answered from the verified-token "
            "cache (no signature check): " + ", ".join(hits) + "."
        )
    return "\n".join(lines)


def nice_max(v):
    """The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k) at or above v."""
    step = 1
    while step * 10 <= v:
        step *= 10
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * step >= v:
            return int(m * step)
    return 10 * step


def svg(data):
    mixes = [m for m in MIXES if any(k[2] == m[0] for k in data)]
    panel_w, panel_h, top, left, bottom = 520, 300, 70, 70, 60
    width = left + panel_w * len(mixes) + 20
    height = top + panel_h + bottom + 30
    rounds = min(int(r["rounds"]) for r in data.values())
    ymax = nice_max(max(int(r["requests_per_s"]) for r in data.values()) * 1.1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="16" '
        'font-weight="bold">End to end over HTTP: requests per second (higher is better)</text>',
    ]
    # Legend.
    x = left
    for _, label, color in VARIANTS:
        out.append(f'<rect x="{x}" y="36" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{x + 16}" y="46">{escape(label)}</text>')
        x += 16 + 7 * len(label) + 24
    for p, (mix, mix_label) in enumerate(mixes):
        x0 = left + p * panel_w
        y0, y1 = top, top + panel_h
        # Axis and grid.
        for i in range(6):
            v = ymax * i / 5
            y = y1 - panel_h * i / 5
            out.append(
                f'<line x1="{x0}" y1="{y}" x2="{x0 + panel_w - 30}" y2="{y}" '
                'stroke="#e5e5e5"/>'
            )
            out.append(
                f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end" fill="#555">'
                f"{int(v / 1000)}k</text>"
            )
        out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#333"/>')
        out.append(
            f'<line x1="{x0}" y1="{y1}" x2="{x0 + panel_w - 30}" y2="{y1}" stroke="#333"/>'
        )
        out.append(
            f'<text x="{x0 + (panel_w - 30) / 2}" y="{y1 + 48}" text-anchor="middle" '
            f'font-weight="bold">{escape(mix_label)}</text>'
        )
        group_w = (panel_w - 30) / len(ALGORITHMS)
        bar_w = group_w / (len(VARIANTS) + 1.2)
        for g, (alg, alg_label) in enumerate(ALGORITHMS):
            gx = x0 + g * group_w + bar_w * 0.6
            out.append(
                f'<text x="{gx + bar_w * len(VARIANTS) / 2}" y="{y1 + 18}" '
                f'text-anchor="middle">{alg_label}</text>'
            )
            base = data.get((alg, "decode", mix))
            for b, (variant, _, color) in enumerate(VARIANTS):
                r = data.get((alg, variant, mix))
                if r is None:
                    continue
                rps = int(r["requests_per_s"])
                h = panel_h * rps / ymax
                bx = gx + b * bar_w
                out.append(
                    f'<rect x="{bx + 2}" y="{y1 - h}" width="{bar_w - 4}" height="{h}" '
                    f'fill="{color}"><title>{alg_label} {variant} {mix}: {rps} req/s, '
                    f"p50 {latency(r['p50_us'])}, p99 {latency(r['p99_us'])}</title></rect>"
                )
                ratio = f"{rps / int(base['requests_per_s']):.1f}×" if base else ""
                cx = bx + bar_w / 2
                out.append(
                    f'<text x="{cx}" y="{y1 - h - 18}" text-anchor="middle" '
                    f'font-size="11" font-weight="bold">{ratio}</text>'
                )
                out.append(
                    f'<text x="{cx}" y="{y1 - h - 6}" text-anchor="middle" '
                    f'font-size="9" fill="#555">p99 {latency(r["p99_us"], 1)}</text>'
                )
    out.append(
        f'<text x="{left}" y="{height - 8}" fill="#555" font-size="10">'
        "Ratios are to the plain decode with the same algorithm and token mix; "
        f"medians of {rounds} round(s). Server, wrk and Redis on one 2-core machine.</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_bench_http.py RESULTS.csv OUT.svg")
    data = load(sys.argv[1])
    with open(sys.argv[2], "w") as f:
        f.write(svg(data))
    print(table(data))


if __name__ == "__main__":
    main()
