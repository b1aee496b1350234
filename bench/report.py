#!/usr/bin/env python3
"""Summarise bench/run results (JSON lines) as a table, with targets for bulwark.

usage: bench/report.py [RESULTS.jsonl] [--md PATH] [--baseline TOOL]

Without RESULTS, the newest $BENCH_DIR/results-*.jsonl is used
(BENCH_DIR defaults to /var/tmp/bulwark-bench). The markdown version goes to
--md (default: report.md next to the results file).
"""
import argparse
import glob
import json
import os
import statistics
import sys

STEPS = [
    ("init", "init", False),
    ("backup1", "backup (first)", True),
    ("backup2", "backup (unchanged)", True),
    ("backup3", "backup (1% changed)", True),
    ("restore", "restore", True),
    ("check", "check --read-data", True),
]
STEP_LABEL = {s: l for s, l, _ in STEPS}
TOOL_ORDER = ["bulwark", "restic", "borg"]
MIB = 1024 * 1024

# (name, kind, step, limit): kind "tp" = throughput ratio >= limit,
# "wall" = wall-time ratio <= limit, "rss" = peak-RSS ratio <= limit,
# "repo" = repository-size ratio <= limit.
TARGETS = [
    ("first backup throughput >= 2x restic", "tp", "backup1", 2.0),
    ("unchanged re-backup time <= 0.33x restic", "wall", "backup2", 0.33),
    ("restore throughput >= 2.5x restic", "tp", "restore", 2.5),
    ("check --read-data throughput >= 2x restic", "tp", "check", 2.0),
    ("peak RSS (max over steps) <= restic", "rss", None, 1.0),
    ("repository size (after 1% change) <= restic", "repo", None, 1.0),
]


def load(path):
    meta, steps, repos, verify = {}, [], [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                print(f"warning: {path}:{n}: bad JSON line skipped", file=sys.stderr)
                continue
            t = rec.get("type")
            if t == "meta":
                meta = rec
            elif t == "step":
                steps.append(rec)
            elif t == "repo":
                repos.append(rec)
            elif t == "verify":
                verify.append(rec)
    return meta, steps, repos, verify


def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarise(steps, repos):
    """-> {(tool, step): dict}, {tool: {after: median bytes}}"""
    out = {}
    for rec in steps:
        key = (rec["tool"], rec["step"])
        d = out.setdefault(key, {"runs": 0, "ok": 0, "wall": [], "cpu": [], "rss": [],
                                 "tp": [], "failed": 0, "skipped": 0})
        d["runs"] += 1
        st = rec.get("status")
        if st == "ok":
            d["ok"] += 1
            wall, cpu, rss = num(rec.get("wall_s")), num(rec.get("cpu_s")), num(rec.get("max_rss_kib"))
            d["wall"].append(wall)
            d["cpu"].append(cpu)
            d["rss"].append(rss)
            b = num(rec.get("data_bytes"))
            if b and wall:
                d["tp"].append(b / 1e6 / max(wall, 0.01))
        elif st == "SKIPPED":
            d["skipped"] += 1
        else:
            d["failed"] += 1
    res = {}
    for key, d in out.items():
        res[key] = {
            "runs": d["runs"], "ok": d["ok"], "failed": d["failed"], "skipped": d["skipped"],
            "wall": median(d["wall"]), "cpu": median(d["cpu"]),
            "rss": max([x for x in d["rss"] if x is not None], default=None),
            "tp": median(d["tp"]),
        }
    rsz = {}
    for rec in repos:
        b = num(rec.get("repo_bytes"))
        if b is not None:
            rsz.setdefault(rec["tool"], {}).setdefault(rec["after"], []).append(b)
    rsz = {t: {a: median(v) for a, v in d.items()} for t, d in rsz.items()}
    return res, rsz


def fmt(v, spec=".1f", none="-"):
    return none if v is None else format(v, spec)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fx(r):
    return "-" if r is None else f"{r:.2f}x"


def render_text(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    right = [i > 1 for i in range(len(headers))]

    def line(cells):
        return "  ".join(str(c).rjust(w) if right[i] else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def render_md(headers, rows):
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---" if i < 2 else "---:" for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?")
    ap.add_argument("--md", help="write the markdown report here")
    ap.add_argument("--baseline", default="restic")
    args = ap.parse_args()

    path = args.results
    if not path:
        bench_dir = os.environ.get("BENCH_DIR", "/var/tmp/bulwark-bench")
        cands = sorted(glob.glob(os.path.join(bench_dir, "results-*.jsonl")))
        if not cands:
            sys.exit(f"report.py: no results-*.jsonl in {bench_dir}")
        path = cands[-1]
    md_path = args.md or os.path.join(os.path.dirname(os.path.abspath(path)), "report.md")

    meta, steps, repos, verify = load(path)
    if not steps:
        sys.exit(f"report.py: no step records in {path}")
    res, rsz = summarise(steps, repos)
    base = args.baseline
    tools_seen = {r["tool"] for r in steps}
    tools = [t for t in TOOL_ORDER if t in tools_seen] + sorted(tools_seen - set(TOOL_ORDER))

    # ---------------------------------------------------------------- header
    ds_bytes = meta.get("dataset_bytes")
    head = [f"bulwark benchmark — run {meta.get('run_id', '?')} ({os.path.basename(path)})"]
    head.append(f"host: {meta.get('host', '?')}, {meta.get('cpus', '?')} CPUs "
                f"({meta.get('cpu_model', '?')}), {fmt(num(meta.get('mem_kib')) and meta['mem_kib'] / MIB, '.1f')} GiB RAM")
    head.append(f"dataset: {meta.get('dataset', '?')}, {meta.get('dataset_files', '?')} files, "
                f"{fmt(ds_bytes and ds_bytes / MIB, '.0f')} MiB ({meta.get('dataset_dir', '?')}); "
                f"rounds: {meta.get('rounds', '?')}; mutation seed: {meta.get('seed', '?')}")
    vers = meta.get("versions") or {}
    head.append("versions: " + "; ".join(f"{t}: {vers.get(t, '?')}" for t in tools))
    head.append("wall/CPU: median over rounds; RSS: max over rounds; MB/s = dataset bytes (10^6) / wall; "
                "repo = du -sb after the step (median)")
    if meta.get("cache_note"):
        head.append("note: " + meta["cache_note"])

    # ---------------------------------------------------------------- main table
    headers = ["step", "tool", "ok", "wall s", "CPU s", "max RSS MiB", "MB/s", "repo MiB",
               f"wall/{base}", f"CPU/{base}", f"RSS/{base}", f"repo/{base}"]
    rows = []
    for step, label, has_tp in STEPS:
        for tool in tools:
            d = res.get((tool, step))
            if not d:
                continue
            b = res.get((base, step)) or {}
            okcol = f"{d['ok']}/{d['runs']}"
            if d["failed"]:
                okcol += " FAILED"
            elif d["skipped"]:
                okcol += " SKIPPED"
            repo = None
            brepo = None
            if step in ("backup1", "backup3"):
                repo = rsz.get(tool, {}).get(step)
                brepo = rsz.get(base, {}).get(step)
            rss = d["rss"] / 1024 if d["rss"] is not None else None
            brss = b.get("rss") / 1024 if b.get("rss") is not None else None
            is_base = tool == base
            rows.append([
                label, tool, okcol, fmt(d["wall"], ".2f"), fmt(d["cpu"], ".2f"), fmt(rss, ".1f"),
                fmt(d["tp"], ".1f") if has_tp else "-",
                fmt(repo and repo / MIB, ".1f") if repo is not None else "-",
                "" if is_base else fx(ratio(d["wall"], b.get("wall"))),
                "" if is_base else fx(ratio(d["cpu"], b.get("cpu"))),
                "" if is_base else fx(ratio(rss, brss)),
                "" if is_base or repo is None else fx(ratio(repo, brepo)),
            ])

    # ---------------------------------------------------------------- targets
    def peak_rss(tool):
        vals = [v["rss"] for (t, s), v in res.items() if t == tool and v["rss"] is not None]
        return max(vals) if vals else None

    def target_value(tool, kind, step):
        if kind in ("tp", "wall"):
            d, b = res.get((tool, step)), res.get((base, step))
            if not d or not b or not d["ok"] or not b["ok"]:
                return None
            return ratio(d["tp"], b["tp"]) if kind == "tp" else ratio(d["wall"], b["wall"])
        if kind == "rss":
            # only meaningful if every step of the tool ran at least once
            if any(not (res.get((tool, s)) or {}).get("ok") for s, _, _ in STEPS):
                return None
            return ratio(peak_rss(tool), peak_rss(base))
        if kind == "repo":
            return ratio(rsz.get(tool, {}).get("backup3"), rsz.get(base, {}).get("backup3"))

    cands = [t for t in tools if t != base]
    trows = []
    if base in tools and cands:
        for name, kind, step, limit in TARGETS:
            row = [name]
            for tool in cands:
                v = target_value(tool, kind, step)
                if v is None:
                    row.append("MISS (no data)")
                    continue
                ok = v >= limit if kind == "tp" else v <= limit
                row.append(f"{'PASS' if ok else 'MISS'} ({v:.2f}x)")
            trows.append(row)
    theaders = ["target (vs " + base + ")"] + cands

    # ---------------------------------------------------------------- verification / failures
    vlines = []
    for tool in tools:
        vs = [v.get("result", "?") for v in verify if v.get("tool") == tool]
        if vs:
            same = sum(1 for v in vs if v == "identical")
            line = f"{tool}: restored tree identical to source in {same}/{len(vs)} rounds"
            bad = [v for v in vs if v != "identical"]
            if bad:
                line += " — " + bad[0][:300]
            vlines.append(line)
    flines = []
    for rec in steps:
        if rec.get("status") == "FAILED":
            flines.append((f"round {rec.get('round')}: {rec['tool']} {rec['step']} FAILED "
                           f"(rc {rec.get('rc')}, {fmt(num(rec.get('wall_s')), '.1f')} s)",
                           rec.get("stderr_tail", "")))

    # ---------------------------------------------------------------- print
    text = ["\n".join(head), "", render_text(headers, rows), ""]
    if trows:
        text += ["targets (bulwark goals; other tools shown for reference):",
                 render_text(theaders, trows), ""]
    else:
        text += [f"targets: need '{base}' and at least one other tool in the run", ""]
    if vlines:
        text += ["restore verification:"] + ["  " + l for l in vlines] + [""]
    if flines:
        text.append("failures:")
        for h, tail in flines:
            text.append("  " + h)
            text += ["    | " + l for l in (tail or "(no stderr)").splitlines()[-10:]]
        text.append("")
    print("\n".join(text).rstrip())

    md = [f"# bulwark benchmark — run {meta.get('run_id', '?')}", ""]
    md += ["- " + h for h in head[1:]] + ["", "## Results", "", render_md(headers, rows), ""]
    md += ["## Targets", ""]
    if trows:
        md += ["bulwark goals; other tools shown for reference.", "", render_md(theaders, trows), ""]
    else:
        md += [f"need '{base}' and at least one other tool in the run", ""]
    if vlines:
        md += ["## Restore verification", ""] + ["- " + l for l in vlines] + [""]
    if flines:
        md += ["## Failures", ""]
        for h, tail in flines:
            md += [f"- {h}", "", "```", *(tail or "(no stderr)").splitlines()[-10:], "```", ""]
    with open(md_path, "w") as f:
        f.write("\n".join(md).rstrip() + "\n")
    print(f"\n(markdown: {md_path})")


if __name__ == "__main__":
    main()
