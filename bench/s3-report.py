#!/usr/bin/env python3
"""Request accounting and report for bench/s3-run (bulwark vs restic on the S3 test server).

usage:
  bench/s3-report.py record RESULTS.jsonl SERVER_LOG OFFSET_FROM OFFSET_TO BUCKET [--tool-out FILE] [KEY=VALUE ...]
      counts the requests to BUCKET that the server front logged between two byte offsets of
      SERVER_LOG (one line per request: "TIME METHOD URL -> STATUS in=N out=M"), adds them to a
      step record made of KEY=VALUE (numbers become numbers), cross-checks them against
      bulwark's --json "storage_requests" line in --tool-out when there is one, and appends the
      record to RESULTS.jsonl. Prints a one-line summary.
  bench/s3-report.py report RESULTS.jsonl [--md PATH]
      markdown report (medians over rounds) on stdout and in PATH.

Request classes (what an S3 bill counts): PUT (PutObject, UploadPart, CreateBucket), GET
(GetObject, ranged or not, and GetBucketLocation), HEAD (HeadObject, HeadBucket), LIST
(ListObjectsV2 and every other GET of a bucket), DELETE, POST (multipart create/complete,
DeleteObjects). Every logged request counts, whatever its status (S3 bills 4xx too); non-2xx
statuses are listed separately. GB = 10^9 bytes, MB = 10^6 bytes.
"""
import json
import re
import statistics
import sys
from urllib.parse import parse_qs, unquote

METHODS = ["PUT", "GET", "HEAD", "LIST", "DELETE", "POST"]
LINE_RE = re.compile(r"^\S+ (GET|PUT|HEAD|DELETE|POST) (\S+) (?:-> (\d{3})|internal error)(.*)$")
INOUT_RE = re.compile(r"\bin=(\d+) out=(\d+)")
# bulwark's storage_requests keys -> server classes
TOOL_KEYS = {"put": "PUT", "get": "GET", "head": "HEAD", "list": "LIST", "delete": "DELETE", "post": "POST"}
STEPS = [("init", "init"), ("backup1", "backup (first)"), ("backup2", "backup (after 1% change)"),
         ("restore", "restore latest"), ("restore_nocache", "restore latest, no local cache")]
TOOLS = ["bulwark", "restic"]


def parse_value(v):
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    if re.fullmatch(r"-?\d+\.\d*", v):
        return float(v)
    return v


def classify(method, url, bucket):
    """-> (class, area) or None when the request is not for `bucket`."""
    path, _, query = url.partition("?")
    segs = [unquote(s) for s in path.split("/") if s]
    if not segs or segs[0] != bucket:
        return None
    q = parse_qs(query, keep_blank_values=True)
    key = segs[1:]
    if not key:  # bucket-level request
        if method == "GET":
            if "location" in q:
                return "GET", "(bucket location)"
            prefix = (q.get("prefix") or [""])[0]
            parts = [p for p in prefix.split("/") if p]
            # the repository lives one level down (BUCKET/repo/...): its area is the next part
            area = parts[1] if len(parts) > 1 else "(all)"
            return "LIST", area
        return method, "(bucket)"
    # object key: BUCKET/repo/<area>/...
    area = key[1] if len(key) > 1 else key[0]
    return method, area


def count(log_path, off_from, off_to, bucket):
    with open(log_path, "rb") as f:
        f.seek(off_from)
        data = f.read(max(0, off_to - off_from))
    res = {m: 0 for m in METHODS}
    by_area, statuses = {}, {}
    bytes_in = bytes_out = 0
    put_in = get_obj_out = 0
    foreign = 0
    for raw in data.decode("utf-8", "replace").splitlines():
        m = LINE_RE.match(raw)
        if not m:
            continue
        method, url, status, rest = m.group(1), m.group(2), m.group(3) or "500", m.group(4)
        c = classify(method, url, bucket)
        if c is None:
            foreign += 1
            continue
        cls, area = c
        res[cls] += 1
        by_area.setdefault(area, {}).setdefault(cls, 0)
        by_area[area][cls] += 1
        if not status.startswith("2"):
            statuses[f"{cls} {status}"] = statuses.get(f"{cls} {status}", 0) + 1
        io = INOUT_RE.search(rest)
        if io:
            i, o = int(io.group(1)), int(io.group(2))
            bytes_in += i
            bytes_out += o
            if cls == "PUT":
                put_in += i
            if cls == "GET" and status.startswith("2") and not area.startswith("("):
                get_obj_out += o
    return {
        "requests": res, "requests_total": sum(res.values()), "requests_by_area": by_area,
        "non_2xx": statuses, "bytes_in": bytes_in, "bytes_out": bytes_out,
        "put_bytes_in": put_in, "get_object_bytes_out": get_obj_out, "other_bucket_lines": foreign,
    }


def tool_counts(path):
    """The last {"message_type":"storage_requests",...} line of a bulwark --json stdout."""
    found = None
    try:
        with open(path, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                line = line.strip()
                if not line.startswith("{") or "storage_requests" not in line:
                    continue
                try:
                    j = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if j.get("message_type") == "storage_requests":
                    found = j
    except OSError:
        pass
    return found


def cmd_record(args):
    results, log_path, off_from, off_to, bucket = args[:5]
    rest = args[5:]
    tool_out = None
    rec = {"type": "step"}
    i = 0
    while i < len(rest):
        if rest[i] == "--tool-out":
            tool_out = rest[i + 1]
            i += 2
            continue
        k, _, v = rest[i].partition("=")
        rec[k] = parse_value(v)
        i += 1
    c = count(log_path, int(off_from), int(off_to), bucket)
    rec.update({"bucket": bucket, **c})
    if tool_out:
        tc = tool_counts(tool_out)
        rec["tool_counts"] = tc
        if tc is not None:
            mism = []
            for k, cls in TOOL_KEYS.items():
                if tc.get(k) is not None and tc[k] != c["requests"][cls]:
                    mism.append(f"{cls}: bulwark counted {tc[k]}, server logged {c['requests'][cls]}")
            if tc.get("bytes_uploaded") is not None and tc["bytes_uploaded"] != c["put_bytes_in"]:
                mism.append(f"bytes uploaded: bulwark counted {tc['bytes_uploaded']}, server received "
                            f"{c['put_bytes_in']} in PUT bodies")
            if tc.get("bytes_downloaded") is not None and tc["bytes_downloaded"] != c["get_object_bytes_out"]:
                mism.append(f"bytes downloaded: bulwark counted {tc['bytes_downloaded']}, server sent "
                            f"{c['get_object_bytes_out']} in 2xx object GETs")
            rec["counter_mismatch"] = mism
        else:
            rec["counter_mismatch"] = ["no storage_requests line in bulwark's output"]
    with open(results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    req = c["requests"]
    summary = " ".join(f"{m}={req[m]}" for m in METHODS if req[m])
    extra = ""
    if rec.get("counter_mismatch"):
        extra = "; COUNTER MISMATCH: " + "; ".join(rec["counter_mismatch"])
    elif tool_out:
        extra = "; bulwark's own counters agree"
    print(f"{c['requests_total']} requests ({summary or 'none'}), "
          f"{c['bytes_in'] / 1e6:.1f} MB up, {c['bytes_out'] / 1e6:.1f} MB down{extra}")


# ---------------------------------------------------------------- report
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f(v, spec):
    return "-" if v is None else format(v, spec)


def ratio(a, b, spec=None):
    if a is None or b is None or b == 0:
        return "-"
    if spec and float(format(a, spec)) == 0 and float(format(b, spec)) == 0:
        return "-"  # both round to zero: no meaningful ratio
    return f"{a / b:.2f}x"


def cmd_report(args):
    path = args[0]
    md_path = None
    if "--md" in args:
        md_path = args[args.index("--md") + 1]
    meta, steps, verify = {}, [], []
    with open(path) as fh:
        for line in fh:
            if not line.strip():
                continue
            r = json.loads(line)
            t = r.get("type")
            if t == "meta":
                meta.update(r)
            elif t == "end":
                meta.update({k: v for k, v in r.items() if k != "type"})
            elif t == "step":
                steps.append(r)
            elif t == "verify":
                verify.append(r)

    def sel(tool, step, ok_only=True):
        return [r for r in steps if r.get("tool") == tool and r.get("step") == step
                and (not ok_only or r.get("status") == "ok")]

    def m(tool, step, fn):
        return med([fn(r) for r in sel(tool, step)])

    def gb(r):
        b = r.get("data_bytes") or 0
        return b / 1e9 if b else None

    def per_gb(x, r):
        g = gb(r)
        return x / g if g else None

    out = [f"# S3 benchmark — bulwark vs restic on the S3 test server (run {meta.get('run_id', '?')})", ""]
    out.append(f"- host: {meta.get('host', '?')}, {meta.get('cpus', '?')} CPUs ({meta.get('cpu_model', '?')}), "
               f"{f((meta.get('mem_kib') or 0) / 2**20, '.1f')} GiB RAM")
    out.append(f"- dataset: {meta.get('dataset', '?')}, {meta.get('dataset_files', '?')} files in "
               f"{meta.get('dataset_dirs', '?')} directories, "
               f"{f((meta.get('dataset_bytes') or 0) / 1e6, '.0f')} MB; after the ~1 % mutation "
               f"{f((meta.get('mutated_bytes') or 0) / 1e6, '.0f')} MB; rounds: {meta.get('rounds', '?')} "
               f"(tool order alternates); mutation seed {meta.get('seed', '?')}")
    vers = meta.get("versions") or {}
    out.append("- versions: " + "; ".join(f"{t}: {vers.get(t, '?')}" for t in TOOLS if t in vers)
               + f"; server: {meta.get('server', '?')}")
    dur = meta.get("duration_s")
    out.append(f"- command: `{meta.get('command', '?')}`; started {meta.get('started', '?')}, "
               f"finished {meta.get('finished', '(not finished)')}"
               + (f" ({dur // 60} min {dur % 60} s)" if isinstance(dur, int) else ""))
    out.append("- wall, MB/s, requests: median over rounds; RSS: max over rounds. MB/s = source bytes (10^6) "
               "/ wall s (restore: the mutated tree). Per GB = per 10^9 bytes of source data of that step. "
               "Requests are counted from the server front's log, per bucket (one bucket per tool and round), "
               "so both tools are counted the same way; \"up\"/\"down\" = request/response body bytes the "
               "front logged.")
    if meta.get("note"):
        out.append("- note: " + meta["note"])
    out.append("")

    # ---- main table
    out += ["## Throughput, requests and bytes per GB of source data", "",
            "| step | metric | bulwark | restic | bulwark / restic |", "|---|---|---:|---:|---:|"]
    for step, label in STEPS:
        rows = [
            ("wall s", lambda r: r.get("wall_s"), ".2f"),
            ("MB/s (source)", lambda r: (r.get("data_bytes") or 0) / 1e6 / r["wall_s"]
             if r.get("data_bytes") and r.get("wall_s") else None, ".1f"),
            ("peak RSS MiB", None, ".1f"),
            ("requests", lambda r: r.get("requests_total"), ".0f"),
            ("requests / GB", lambda r: per_gb(r.get("requests_total", 0), r), ".1f"),
            ("MB uploaded / GB", lambda r: per_gb((r.get("bytes_in") or 0) / 1e6, r), ".2f"),
            ("MB downloaded / GB", lambda r: per_gb((r.get("bytes_out") or 0) / 1e6, r), ".2f"),
            ("server CPU s", lambda r: r.get("server_cpu_s"), ".2f"),
            ("load avg before (1 min)", lambda r: r.get("loadavg_before"), ".2f"),
        ]
        for name, fn, spec in rows:
            if step == "init" and name in ("MB/s (source)", "requests / GB", "MB uploaded / GB", "MB downloaded / GB"):
                continue
            vals = {}
            for t in TOOLS:
                if fn is None:
                    rss = [r.get("max_rss_kib") for r in sel(t, step) if r.get("max_rss_kib") is not None]
                    vals[t] = max(rss) / 1024 if rss else None
                else:
                    vals[t] = m(t, step, fn)
            rat = "" if name.startswith("load avg") else ratio(vals["bulwark"], vals["restic"], spec)
            out.append(f"| {label} | {name} | {f(vals['bulwark'], spec)} | {f(vals['restic'], spec)} | {rat} |")
    out.append("")

    # ---- by method
    out += ["## Requests by method (median per step)", "",
            "| step | tool | " + " | ".join(METHODS) + " | total | non-2xx |",
            "|---|---|" + "---:|" * (len(METHODS) + 2)]
    for step, label in STEPS:
        for t in TOOLS:
            if not sel(t, step):
                continue
            cells = [f(m(t, step, lambda r, k=k: r["requests"][k]), ".0f") for k in METHODS]
            tot = f(m(t, step, lambda r: r["requests_total"]), ".0f")
            errs = {}
            for r in sel(t, step):
                for k, v in (r.get("non_2xx") or {}).items():
                    errs.setdefault(k, []).append(v)
            e = ", ".join(f"{k}: {f(med(v), '.0f')}" for k, v in sorted(errs.items())) or "-"
            out.append(f"| {label} | {t} | " + " | ".join(cells) + f" | {tot} | {e} |")
    out.append("")

    # ---- by area
    out += ["## Requests by object area (median per step; area = first path component in the repository)", ""]
    out += ["| step | tool | area | " + " | ".join(METHODS) + " |", "|---|---|---|" + "---:|" * len(METHODS)]
    for step, label in STEPS:
        for t in TOOLS:
            recs = sel(t, step)
            if not recs:
                continue
            areas = sorted({a for r in recs for a in (r.get("requests_by_area") or {})})
            for a in areas:
                cells = [f(med([(r.get("requests_by_area") or {}).get(a, {}).get(k, 0) for r in recs]), ".0f")
                         for k in METHODS]
                out.append(f"| {label} | {t} | {a} | " + " | ".join(cells) + " |")
    out.append("")

    # ---- cross-check
    out += ["## bulwark's own counters (`--json` storage_requests) vs the server log", ""]
    lines = []
    for r in [r for r in steps if r.get("tool") == "bulwark" and "counter_mismatch" in r]:
        tc = r.get("tool_counts") or {}
        own = ", ".join(f"{k} {tc.get(k)}" for k in TOOL_KEYS if tc.get(k)) or "-"
        mm = r.get("counter_mismatch") or []
        lines.append(f"- round {r.get('round')} {r.get('step')}: bulwark: {own}, retries {tc.get('retries', '?')}, "
                     f"{tc.get('bytes_uploaded', '?')} B up, {tc.get('bytes_downloaded', '?')} B down — "
                     + ("**MISMATCH**: " + "; ".join(mm) if mm else "matches the server log (requests and bytes)"))
    out += lines or ["- (no bulwark steps)"]
    out.append("")

    # ---- verification / failures
    out += ["## Restore verification", ""]
    for step, label in STEPS:
        for t in TOOLS:
            vs = [v for v in verify if v.get("tool") == t and v.get("step", "restore") == step]
            if vs:
                same = sum(1 for v in vs if v.get("result") == "identical")
                bad = [v.get("result") for v in vs if v.get("result") != "identical"]
                files = sorted({v.get("restored_files") for v in vs if v.get("restored_files") is not None})
                out.append(f"- {label}, {t}: restored tree identical to the source (`diff -r --no-dereference`) in "
                           f"{same}/{len(vs)} rounds" + (f" ({', '.join(map(str, files))} files)" if files else "")
                           + (f" — {bad[0][:300]}" if bad else ""))
    fails = [r for r in steps if r.get("status") != "ok"]
    if fails:
        out += ["", "## Failures", ""]
        for r in fails:
            out.append(f"- round {r.get('round')} {r.get('tool')} {r.get('step')}: {r.get('status')} "
                       f"(rc {r.get('rc')}): {str(r.get('stderr_tail', ''))[-500:]!r}")
    out.append("")
    text = "\n".join(out)
    print(text)
    if md_path:
        with open(md_path, "w") as fh:
            fh.write(text)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("record", "report"):
        sys.exit(__doc__)
    if sys.argv[1] == "record":
        if len(sys.argv) < 7:
            sys.exit(__doc__)
        cmd_record(sys.argv[2:])
    else:
        if len(sys.argv) < 3:
            sys.exit(__doc__)
        cmd_report(sys.argv[2:])


if __name__ == "__main__":
    main()
