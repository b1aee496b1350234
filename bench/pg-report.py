#!/usr/bin/env python3
"""Report of a bench/pg-run results file: bench/pg-report.py RESULTS.jsonl [--md PATH]."""
import json
import statistics
import sys


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, nd=2):
    return "n/a" if x is None else f"{x:.{nd}f}"


def main():
    args = sys.argv[1:]
    md_path = None
    if "--md" in args:
        i = args.index("--md")
        md_path = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit("usage: bench/pg-report.py RESULTS.jsonl [--md PATH]")
    recs = [json.loads(l) for l in open(args[0]) if l.strip()]
    meta = next((r for r in recs if r["type"] == "meta"), {})
    end = next((r for r in recs if r["type"] == "end"), {})
    steps = [r for r in recs if r["type"] == "step"]
    nseg = meta.get("wal_segments", 0)

    def vals(tool, step, key="wall_s"):
        return [r[key] for r in steps if r["tool"] == tool and r["step"] == step and r["status"] == "ok"
                and isinstance(r.get(key), (int, float))]

    def failed(tool, step):
        return sum(1 for r in steps if r["tool"] == tool and r["step"] == step and r["status"] != "ok")

    def rounds_str(tool, step):
        return " / ".join(fmt(v) for v in vals(tool, step))

    loads = meta.get("loads", "range").split()
    out = []
    p = out.append
    p(f"# PostgreSQL physical backup: bulwark vs pgBackRest ({meta.get('run_id', '?')})")
    p("")
    p(f"- command: `{meta.get('command', '?')}`")
    p(f"- host: {meta.get('host')} ({meta.get('cpus')} cores, {meta.get('cpu_model')}, "
      f"{int(meta.get('mem_kib', 0)) // 1048576} GiB RAM)")
    p(f"- PostgreSQL {meta.get('pg_version')}, {meta.get('server')}")
    p(f"- cluster: `pgbench -i -s {meta.get('scale')}`: data directory {meta.get('data_dir_bytes', 0) / 1e9:.2f} GB, "
      f"database {meta.get('db_bytes', 0) / 1e9:.2f} GB (pgbench -i took {meta.get('pgbench_init_s')} s)")
    p(f"- {meta.get('bulwark_version')} (`{meta.get('bulwark_binary')}`): {meta.get('bulwark_settings')}")
    p(f"- {meta.get('pgbackrest_version')}: {meta.get('pgbackrest_settings')}")
    p(f"- rounds: {meta.get('rounds')} (tool order alternates; fresh repositories per round, same file system); "
      f"loads: {', '.join(loads)}")
    p(f"- WAL: {nseg} segments {meta.get('wal_first')} .. {meta.get('wal_last')} "
      f"({meta.get('wal_bytes', 0) / 1048576:.0f} MiB), generated once by UPDATEs of successive 1 % aid ranges (bench/pg-run)")
    p(f"- load at start: `{meta.get('uptime_start', '?').strip()}`")
    p(f"- load at end: `{end.get('uptime_end', '?').strip()}`; duration {end.get('duration_s', '?')} s")
    p("")
    p("Wall seconds, medians over rounds (each round's value in the detail table below). "
      "Ratio = bulwark / pgBackRest (for WAL: segments/s).")
    p("")
    p("| step | bulwark median | pgBackRest median | ratio | target | met? |")
    p("| --- | ---: | ---: | ---: | --- | --- |")

    def row(label, bstep, pstep, target, cmp, per_seg=False, note=""):
        b, g = med(vals("bulwark", bstep)), med(vals("pgbackrest", pstep))
        if per_seg:
            b = nseg / b if b else None
            g = nseg / g if g else None
            unit = " seg/s"
        else:
            unit = " s"
        ratio = b / g if b is not None and g else None
        if ratio is None:
            met = "MISS (no data)" if cmp else ""
        elif cmp == "le":
            met = "yes" if ratio <= target else "NO"
        elif cmp == "ge":
            met = "yes" if ratio >= target else "NO"
        else:
            met = ""
        tgt = {"le": f"≤ {target}x", "ge": f"≥ {target}x"}.get(cmp, "(reference)")
        p(f"| {label}{note} | {fmt(b)}{unit if b is not None else ''} | {fmt(g)}{unit if g is not None else ''} | "
          f"{fmt(ratio)}x | {tgt} | {met} |")

    row("full base backup", "full", "full", 0.7, "le")
    for l in loads:
        row(f"second base backup ({l} load) vs pgBackRest incr", f"second-{l}", f"second-{l}-incr", 0.3, "le")
        row(f"second base backup ({l} load) vs pgBackRest full", f"second-{l}", f"second-{l}-full", 0.3, None)
    row("restore (newest backup)", "restore", "restore", 1, "le")
    row(f"WAL push, {nseg} segments, 1 process each", "walpush", "walpush", 2, "ge", per_seg=True)
    p("")
    p("The second-backup target is evaluated against pgBackRest's `--type=incr` (its natural second backup); "
      "its `--type=full` at the same cluster state is shown for reference.")
    p("")
    p("## Per step and round")
    p("")
    p("| tool | step | wall s (rounds) | median CPU s (user+sys) | max peak RSS MiB | failed |")
    p("| --- | --- | --- | ---: | ---: | ---: |")
    order = ["full"] + [f"second-{l}" for l in loads] + [f"second-{l}-incr" for l in loads] + \
        [f"second-{l}-full" for l in loads] + ["restore", "walpush"]
    for step in order:
        for tool in ("bulwark", "pgbackrest"):
            rs = [r for r in steps if r["tool"] == tool and r["step"] == step]
            if not rs:
                continue
            cpu = [r["user_s"] + r["sys_s"] for r in rs if r["status"] == "ok"
                   and isinstance(r.get("user_s"), (int, float)) and isinstance(r.get("sys_s"), (int, float))]
            rss = [r["max_rss_kib"] for r in rs if isinstance(r.get("max_rss_kib"), int)]
            p(f"| {tool} | {step} | {rounds_str(tool, step) or 'n/a'} | {fmt(med(cpu))} | "
              f"{fmt(max(rss) / 1024 if rss else None, 1)} | {failed(tool, step)} |")
    p("")
    p("CPU is the tool's process and its children (bulwark: its pg_basebackup; pgBackRest: its local "
      "worker processes), not the PostgreSQL server's walsender/backend. Load average (1 min) before each "
      "step: " + ", ".join(f"r{r['round']} {r['tool']} {r['step']} {r['loadavg_before']}" for r in steps) + ".")
    p("")
    p("## Repository sizes (du -sb, MiB, per round)")
    p("")
    p("| after | bulwark | pgBackRest |")
    p("| --- | --- | --- |")
    repos = [r for r in recs if r["type"] == "repo"]
    afters = []
    for r in repos:
        a = r["after"]
        if r["tool"] == "pgbackrest" and a.startswith("second-"):
            a = a  # incr / full rows are their own
        if a not in afters:
            afters.append(a)
    for a in afters:
        def sz(tool):
            xs = [r["repo_bytes"] for r in repos if r["tool"] == tool and r["after"] == a
                  and isinstance(r.get("repo_bytes"), int)]
            return " / ".join(f"{x / 1048576:.1f}" for x in xs) or "—"
        label = a.replace("walpush-wal", "WAL push (WAL part only: bulwark wal/, pgBackRest archive/)")
        p(f"| {label} | {sz('bulwark')} | {sz('pgbackrest')} |")
    p("")
    p("pgBackRest's `second-*-incr` / `second-*-full` sizes are the whole repository after that backup "
      "(the full one comes after the incr). bulwark's repository holds both of its base backups.")
    p("")
    p("## Restore check (untimed)")
    p("")
    for v in (r for r in recs if r["type"] == "verify"):
        p(f"- round {v['round']}: files bulwark {v['files_bulwark']} ({v['bytes_bulwark'] / 1e9:.3f} GB), "
          f"pgBackRest {v['files_pgbackrest']} ({v['bytes_pgbackrest'] / 1e9:.3f} GB); "
          f"only in bulwark's: `{v['only_bulwark'].strip() or 'none'}`; "
          f"only in pgBackRest's: `{v['only_pgbackrest'].strip() or 'none'}`; "
          f"pg_verifybackup -n on bulwark's: {v['pg_verifybackup_bulwark']}")
    for l in (r for r in recs if r["type"] == "load"):
        pass
    p("")
    p("Loads: " + "; ".join(f"round {r['round']} {r['load']}: {r['rows_or_transactions']} rows/transactions, "
                            f"{r['seconds']} s" for r in recs if r["type"] == "load") + ".")
    fails = [r for r in steps if r["status"] != "ok"]
    if fails:
        p("")
        p("## Failures")
        for r in fails:
            p(f"- round {r['round']} {r['tool']} {r['step']}: rc {r['rc']}: `{r.get('stderr_tail', '').strip()[-400:]}`")
    text = "\n".join(out) + "\n"
    print(text)
    if md_path:
        with open(md_path, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
