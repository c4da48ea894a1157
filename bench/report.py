#!/usr/bin/env python3
"""Turns the raw results of bench/run.sh into docs/benchmarks.md and one SVG
plot per workload under docs/bench/.

usage: report.py RESULTS.tsv META.txt DOC.md PLOT_DIR

RESULTS.tsv rows: workload, system, configuration, run, key, value.  Every
figure is the median of the runs with their min and max; every ratio is
computed run by run (both sides measured in the same run) and its median is
shown.  Only the part of DOC.md between the BEGIN and END markers is
replaced; the rest (the analysis, the soak section) is kept as it is.
"""
import collections
import html
import math
import os
import statistics
import sys

BEGIN = "<!-- bench/run.sh: generated from here -->"
END = "<!-- bench/run.sh: generated up to here -->"

SYSTEM_NAMES = {
    "sandbox-journal": "sandbox-journal",
    "sqlite": "raw SQLite",
    "durable-streams": "Durable Streams (file)",
    "durable-streams-memory": "Durable Streams (memory)",
    "redis": "Redis",
    "postgres": "PostgreSQL",
    "fanout-floor": "floor: bare send() loop (bench/fanout_floor.c)",
}
MOCK_EVENTS_PER_MESSAGE = 6


def load(path):
    data = collections.defaultdict(lambda: collections.defaultdict(dict))
    order = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 6:
                continue
            w, s, c, r, k, v = parts
            try:
                value = float(v)
            except ValueError:
                continue
            if (w, s, c) not in order:
                order.append((w, s, c))
            data[(w, s, c)][int(r)][k] = value
    return data, order


def per_run(data, key, metric):
    return {r: m[metric] for r, m in data.get(key, {}).items() if metric in m}


def stats(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def ratio_stats(data, num_key, num_metric, den_key, den_metric, num_scale=1.0, den_scale=1.0):
    a = per_run(data, num_key, num_metric)
    b = per_run(data, den_key, den_metric)
    ratios = [a[r] * num_scale / (b[r] * den_scale) for r in a if r in b and b[r] > 0]
    return stats(ratios)


def fmt(x, digits=0):
    if x is None:
        return "–"
    if abs(x) >= 100 or digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def cell(st, digits=0, scale=1.0):
    if not st:
        return "–"
    med, lo, hi = (v * scale for v in st)
    if lo == hi:
        return f"{fmt(med, digits)}"
    return f"{fmt(med, digits)} ({fmt(lo, digits)}–{fmt(hi, digits)})"


def ratio_cell(st):
    if not st:
        return "–"
    med, lo, hi = st
    if lo == hi:
        return f"{med:.2f}×"
    return f"{med:.2f}× ({lo:.2f}–{hi:.2f})"


def svg_bars(title, unit, rows, path, log=False):
    """Horizontal bars (median) with min-max whiskers; rows: (label, (med, lo, hi))."""
    rows = [(label, st) for label, st in rows if st]
    if not rows:
        return
    width, label_w, bar_h, top = 900, 380, 18, 40
    height = top + len(rows) * (bar_h + 6) + 40
    hi_all = max(st[2] for _, st in rows)
    lo_all = min(st[1] for _, st in rows)
    plot_w = width - label_w - 90
    if log:
        lo_log = math.floor(math.log10(max(lo_all, 1e-3)))
        hi_log = math.ceil(math.log10(max(hi_all, 1e-3) * 1.01))
        if hi_log == lo_log:
            hi_log += 1

        def x(v):
            v = max(v, 10 ** lo_log)
            return label_w + plot_w * (math.log10(v) - lo_log) / (hi_log - lo_log)
        ticks = [10 ** e for e in range(lo_log, hi_log + 1)]
    else:
        top_v = hi_all * 1.05 or 1

        def x(v):
            return label_w + plot_w * v / top_v
        step = 10 ** math.floor(math.log10(top_v))
        if top_v / step < 3:
            step /= 2
        ticks = [i * step for i in range(int(top_v / step) + 1)]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{html.escape(title)}</text>',
    ]
    axis_y = top + len(rows) * (bar_h + 6)
    for t in ticks:
        tx = x(t)
        out.append(f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{axis_y}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{tx:.1f}" y="{axis_y + 14}" text-anchor="middle" '
                   f'fill="#555">{html.escape(fmt(t, 1 if t < 10 else 0))}</text>')
    out.append(f'<text x="{label_w + plot_w / 2:.0f}" y="{axis_y + 32}" text-anchor="middle">'
               f'{html.escape(unit)}{" (log scale)" if log else ""}; bar: median, '
               f'line: min–max</text>')
    for i, (label, (med, lo, hi)) in enumerate(rows):
        y = top + i * (bar_h + 6)
        ours = label.startswith("sandbox-journal")
        color = "#2b6cb0" if ours else "#a0aec0"
        x0 = x(10 ** lo_log) if log else label_w
        out.append(f'<text x="{label_w - 6}" y="{y + bar_h - 5}" text-anchor="end">'
                   f'{html.escape(label)}</text>')
        out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x(med) - x0, 1):.1f}" '
                   f'height="{bar_h}" fill="{color}"/>')
        out.append(f'<line x1="{x(lo):.1f}" y1="{y + bar_h / 2}" x2="{x(hi):.1f}" '
                   f'y2="{y + bar_h / 2}" stroke="black" stroke-width="1.5"/>')
        out.append(f'<text x="{x(hi) + 4:.1f}" y="{y + bar_h - 5}" fill="#333">'
                   f'{html.escape(fmt(med, 1 if med < 10 else 0))}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    results, meta_path, doc_path, plot_dir = sys.argv[1:5]
    data, order = load(results)
    meta = {}
    with open(meta_path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    os.makedirs(plot_dir, exist_ok=True)
    rel = os.path.relpath(plot_dir, os.path.dirname(doc_path))
    md = [BEGIN, ""]
    runs = meta.get("runs", "?")
    md.append(f"## Side by side ({meta.get('mode', '?')} run of `bench/run.sh`, "
              f"{meta.get('date', '?')})")
    md.append("")
    md.append("**Machine.** " + "; ".join(
        f"{k.replace('_', ' ')}: {meta[k]}" for k in ("cpu", "memory", "kernel", "disk")
        if k in meta) + ". Load average before the run "
        f"{meta.get('load_before', '?')}, after {meta.get('load_after', '?')}; the load "
        "generator runs on the same cores as the server under test, and other engineers' "
        "builds may share the machine.")
    md.append("")
    md.append("**Versions.** " + "; ".join(
        f"{k.replace('_', ' ')} {meta[k]}" for k in
        ("sandbox_journal", "sqlite", "libmicrohttpd", "redis", "postgresql", "durable_streams")
        if k in meta) + ".")
    md.append("")
    md.append(f"Every figure is the median of {runs} run(s), with (min–max) when they "
              "differ; every ratio is computed within each run, both sides measured in "
              f"that run, and its median shown. Windows: {meta.get('secs', '?')} s "
              f"(append, reads), {meta.get('tail_secs', '?')} s (live tail).")
    md.append("")

    def keys_of(workload, system=None):
        return [k for k in order if k[0] == workload and (system is None or k[1] == system)]

    def label(key):
        return f"{SYSTEM_NAMES.get(key[1], key[1])}: {key[2]}"

    # ---- append
    md.append("### 1. Append")
    md.append("")
    md.append("| system | configuration | events/s | vs raw SQLite, same batch and durability |")
    md.append("| --- | --- | --- | --- |")
    plot = []
    ref_http = {}
    for key in keys_of("append"):
        w, s, c = key
        metric = "events_per_s" if s in ("sandbox-journal", "sqlite") and "HTTP" not in c \
            else "ops_per_s"
        scale = MOCK_EVENTS_PER_MESSAGE if "mock" in c else 1.0
        st = stats([v * scale for v in per_run(data, key, metric).values()])
        ratio = "–"
        if c.startswith("journal API, 1 writer"):
            rest = c[len("journal API, 1 writer, "):]
            ratio = ratio_cell(ratio_stats(data, key, metric,
                                           ("append", "sqlite", "raw SQLite, " + rest), metric))
        if "mock" in c:
            kind = "keyed" if "Idempotency-Key" in c else "plain"
            ref_http[(kind, c.rsplit(", ", 1)[1])] = key
        md.append(f"| {SYSTEM_NAMES.get(s, s)} | {c} | {cell(st)} | {ratio} |")
        plot.append((label(key), st))
    md.append("")
    full_ref = ref_http.get(("plain", "full"))
    if full_ref:
        md.append("Our HTTP append path (durability full, fsync per commit) against each "
                  "peer's append over its own protocol, events/s, same run. A message "
                  "counts its 6 events: the mock (`--mock-delay-ms 0`) journals its reply "
                  "in the message's batch, so all 6 are durable when the POST is "
                  "answered:")
        md.append("")
        md.append("| peer | sandbox-journal ÷ peer |")
        md.append("| --- | --- |")
        for key in keys_of("append"):
            if key[1] in ("sandbox-journal", "sqlite"):
                continue
            md.append(f"| {label(key)} | " + ratio_cell(ratio_stats(
                data, full_ref, "ops_per_s", key, "ops_per_s",
                num_scale=MOCK_EVENTS_PER_MESSAGE)) + " |")
        md.append("")
    keyed = [(d, ref_http[("plain", d)], ref_http[("keyed", d)]) for d in ("full", "normal")
             if ("plain", d) in ref_http and ("keyed", d) in ref_http]
    if keyed:
        md.append("What `Idempotency-Key` costs on the message path (issue 15; goal: ≤ 5 %): "
                  "the keyed run's messages/s ÷ the plain run's, same server, same run:")
        md.append("")
        md.append("| durability | keyed ÷ plain |")
        md.append("| --- | --- |")
        for d, plain, with_key in keyed:
            md.append(f"| {d} | " + ratio_cell(ratio_stats(
                data, with_key, "ops_per_s", plain, "ops_per_s")) + " |")
        md.append("")
    svg_bars("Append: events/s", "events/s", plot, os.path.join(plot_dir, "append.svg"), log=True)
    md.append(f"![append]({rel}/append.svg)")
    md.append("")

    # ---- reads
    md.append("### 2. Catch-up reads (pages of 100 events, 64 connections)")
    md.append("")
    md.append("| system | journal size | pages/s | events/s | server CPU % | "
              "sandbox-journal ÷ this, same size |")
    md.append("| --- | --- | --- | --- | --- | --- |")
    plot = []
    for key in keys_of("read"):
        w, s, c = key
        st = stats(per_run(data, key, "ops_per_s").values())
        cpu = stats([v for v in per_run(data, key, "server_cpu_pct").values() if v >= 0])
        ours = ("read", "sandbox-journal", c)
        ratio = "–" if s == "sandbox-journal" or ours not in data else ratio_cell(
            ratio_stats(data, ours, "ops_per_s", key, "ops_per_s"))
        md.append(f"| {SYSTEM_NAMES.get(s, s)} | {c} | {cell(st)} | {cell(st, scale=100)} | "
                  f"{cell(cpu)} | {ratio} |")
        plot.append((label(key), st))
    sizes = [k for k in keys_of("read", "sandbox-journal")]
    if len(sizes) >= 2:
        md.append("")
        md.append(f"Read cost as the journal grows (sandbox-journal, pages/s at "
                  f"{sizes[0][2]} ÷ pages/s at {sizes[-1][2]}, same run): " + ratio_cell(
                      ratio_stats(data, sizes[0], "ops_per_s", sizes[-1], "ops_per_s")) + ".")
    md.append("")
    svg_bars("Catch-up reads: pages of 100 events per second", "pages/s", plot,
             os.path.join(plot_dir, "read.svg"))
    md.append(f"![reads]({rel}/read.svg)")
    md.append("")

    # ---- tail
    md.append("### 3. Live tail (SSE, appends at a fixed rate)")
    md.append("")
    md.append("Appenders post 100 appends/s in all, one every 10 ms (8 appender threads on "
              "interleaved schedules), round robin over the sessions; each waits "
              "for its answer, so a lower appends/s is a server that could not keep up. A "
              "sandbox-journal append is a mock message (6 events); the latency is from just "
              "before the POST is written to the subscriber reading the first event that "
              "carries it, over every subscriber, so it includes the commit's fsync "
              "(durability full). Subscribers speak HTTP/1.1, as browsers and the SDKs do. "
              "The floor row is no server: one thread sends each append's bytes (2,400, "
              "a mock message's frames) to every subscriber socket of the append's session, "
              "one send() each, and a client like the others reads them; no server's fan-out "
              "can beat it on this machine.")
    md.append("")
    md.append("| system | subscribers | appends/s | p50 ms | p99 ms | max ms | delivered / "
              "expected | server CPU % |")
    md.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    plot = []
    for key in keys_of("tail"):
        w, s, c = key
        runs_d = data[key]

        def st_of(m, keep=lambda v: v >= 0):
            return stats([v for v in per_run(data, key, m).values() if keep(v)])
        delivered = sum(m.get("samples", 0) for m in runs_d.values())
        expected = sum(m.get("expected", 0) for m in runs_d.values())
        md.append(f"| {SYSTEM_NAMES.get(s, s)} | {c} | {cell(st_of('posts_per_s'))} | "
                  f"{cell(st_of('p50_ms'), 2)} | {cell(st_of('p99_ms'), 2)} | "
                  f"{cell(st_of('max_ms'), 2)} | {fmt(delivered)} / {fmt(expected)} | "
                  f"{cell(st_of('server_cpu_pct'))} |")
        plot.append((label(key), st_of("p99_ms")))
    md.append("")
    svg_bars("Live tail: p99 append-to-delivery latency", "ms", plot,
             os.path.join(plot_dir, "tail.svg"), log=True)
    md.append(f"![live tail]({rel}/tail.svg)")
    md.append("")

    # ---- restart
    md.append("### 4. Restart: process start to first served page")
    md.append("")
    md.append("| journal | first page ms | RSS at first page (kB) | RSS 1 s later (kB) |")
    md.append("| --- | --- | --- | --- |")
    plot = []
    for key in keys_of("restart"):
        st = stats(per_run(data, key, "first_page_ms").values())
        md.append(f"| {key[2]} | {cell(st, 1)} | "
                  f"{cell(stats(per_run(data, key, 'rss_kb').values()))} | "
                  f"{cell(stats(per_run(data, key, 'rss_1s_kb').values()))} |")
        plot.append((label(key), st))
    md.append("")
    svg_bars("Restart: ms from exec to the first page served", "ms", plot,
             os.path.join(plot_dir, "restart.svg"))
    md.append(f"![restart]({rel}/restart.svg)")
    md.append("")

    # ---- memory
    md.append("### 5. Memory (server RSS)")
    md.append("")
    md.append("| system | state | RSS |")
    md.append("| --- | --- | --- |")
    plot = []
    for key in keys_of("memory"):
        if per_run(data, key, "rss_kb"):
            st = stats(per_run(data, key, "rss_kb").values())
            md.append(f"| {SYSTEM_NAMES.get(key[1], key[1])} | {key[2]} | {cell(st)} kB |")
            plot.append((label(key) + " (kB)", st))
            continue
        rss = stats(per_run(data, key, "rss_subs_kb").values())
        per = stats(per_run(data, key, "rss_per_sub_b").values())
        md.append(f"| {SYSTEM_NAMES.get(key[1], key[1])} | {key[2]} | {cell(rss)} kB; "
                  f"{cell(per)} bytes per connection |")
        plot.append((f"{label(key)} (kB)", rss))
    for key in keys_of("restart", "sandbox-journal")[-1:]:
        st = stats(per_run(data, key, "rss_1s_kb").values())
        md.append(f"| sandbox-journal | {key[2]}, after start-up | {cell(st)} kB |")
        plot.append((f"sandbox-journal: {key[2]} (kB)", st))
    md.append("")
    svg_bars("Memory: server RSS", "kB", plot, os.path.join(plot_dir, "memory.svg"), log=True)
    md.append(f"![memory]({rel}/memory.svg)")
    md.append("")

    # ---- journals built
    gen = keys_of("gen")
    if gen:
        md.append("Journals and peers' data were built before the reads (not a comparison: "
                  "each peer is loaded its fastest way):")
        md.append("")
        for key in gen:
            m = data[key][1]
            rate = m.get("events_per_s") or (m.get("filled", 0) / m["secs"] if m.get("secs") else 0)
            md.append(f"- {SYSTEM_NAMES.get(key[1], key[1])}, {key[2]}: {fmt(m.get('secs'), 1)} s "
                      f"({fmt(rate)} events/s)")
        md.append("")
    md.append(END)

    doc = open(doc_path).read() if os.path.exists(doc_path) else "# Benchmarks\n"
    generated = "\n".join(md)
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        doc = head + generated + tail
    else:
        cut = doc.find("\n## ")
        head, tail = (doc, "") if cut < 0 else (doc[:cut + 1], doc[cut + 1:])
        doc = head + "\n" + generated + "\n\n" + tail
    with open(doc_path, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    main()
