#!/usr/bin/env python3
"""The TPC-H macro benchmark, end to end: generates scale-factor-1 Parquet
with tpchgen-cli, times the 22 queries in DuckDB (on the generated files and
on the files as Inland stores them), natively in DataFusion and as Inland
jobs (benches/tpch.rs, release build), and writes the TPC-H section of
benches/RESULTS.md. Tables are registered as a user would (no --sort-by);
--sorted measures the documented sorted layout instead. Medians over --runs runs after one
warm-up each. DuckDB and tpchgen-cli are benchmark peers and tools only;
they are never part of Inland's runtime.

    python3 benches/tpch/run.py [--sf 1] [--runs 5] [--data DIR] [--sorted]
"""
import argparse
import json
import math
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
TABLES = ["lineitem", "orders", "customer", "supplier", "nation", "region", "part", "partsupp"]
QUERIES = [f"q{i}" for i in range(1, 23)]


def pip_install(*packages):
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *packages], check=True)


def generate(sf, data, tables=None):
    """TPC-H tables at scale factor `sf` into `data` (all of them, or just `tables`), unless there."""
    if all((data / f"{t}.parquet").exists() for t in (tables or TABLES)):
        return
    data.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["tpchgen-cli", "--version"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pip_install("tpchgen-cli")
    print(f"generating TPC-H scale factor {sf} into {data}", flush=True)
    only = ["--tables", ",".join(tables)] if tables else []
    subprocess.run(["tpchgen-cli", "parquet", "-s", str(sf), *only, f"--output-dir={data}"], check=True)


def duckdb_times(data, runs):
    try:
        import duckdb
    except ImportError:
        pip_install("duckdb")
        import duckdb
    con = duckdb.connect()
    for t in TABLES:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{data / (t + '.parquet')}')")
    out = {}
    for q in QUERIES:
        sql = (ROOT / "benches/tpch/queries" / f"{q}.sql").read_text()
        con.execute(sql).fetchall()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            con.execute(sql).fetchall()
            times.append(time.perf_counter() - start)
        out[q] = statistics.median(times)
        print(f"duckdb {q} ({data}): median {out[q]:.3f} s", flush=True)
    return out, duckdb.__version__


def inland_and_native(data, runs, stored, sorted_layout):
    out = ROOT / "target" / "tpch-results.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(pathlib.Path.home() / ".cache/inland/target"))
    args = ["cargo", "bench", "-p", "inland-benches", "--bench", "tpch", "--",
            "--data", str(data), "--runs", str(runs), "--json", str(out), "--stored-copy", str(stored)]
    if sorted_layout:
        args.append("--sorted")
    subprocess.run(args, check=True, cwd=ROOT, env=env)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return {(r["engine"], r["query"]): r for r in rows}


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal"))
        mem_gib = int(mem.split()[1]) / (1 << 20)
    except OSError:
        mem_gib = 0
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.system()} {platform.release()}, {rustc}"


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def write_results(sf, runs, duck, duck_stored, duck_version, rs, sorted_layout):
    layout = "line items sorted by return flag and ship date (`--sort-by`)" if sorted_layout else \
        "every table in file order, as `dataset add` stores it without `--sort-by`"
    marker = "tpch-sorted" if sorted_layout else "tpch"
    lines = [
        f"<!-- {marker}:start -->",
        f"## TPC-H, scale factor {sf}" + (", sorted layout" if sorted_layout else ""),
        "",
        f"Machine: {machine()}. DuckDB {duck_version} (Python package), DataFusion 55.2.0.",
        f"Command: `python3 benches/tpch/run.py --sf {sf} --runs {runs}" + (" --sorted" if sorted_layout else "")
        + f"` (medians of {runs} runs after a warm-up; seconds). Stored layout: {layout}.",
        "DuckDB: in-process, on the generated files and on the files as Inland stores them (stored).",
        "Native: DataFusion with default settings on the generated files; native, stored: the same on the",
        "stored files. Inland: the same files registered as datasets, each query a job (`sql-probe`) under a",
        "grant, with a policy in force, its result emitted to quarantine and checked by the gate; the time is",
        "from submission to the job's report in the benchmark's process (the whole job as `inland serve` runs",
        "it; the `inland job run` process adds its start and the domain's opening). In-sandbox: the part spent",
        "instantiating and running the job (queries included). Native, native stored and Inland take turns",
        "within each run, so drift in the machine's speed falls on all three alike.",
        "",
        "| query | DuckDB | DuckDB, stored | native DataFusion | native, stored | Inland | Inland in-sandbox "
        "| Inland/native | in-sandbox/DuckDB | in-sandbox/DuckDB stored |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    col = {k: [] for k in ["d", "ds", "n", "ns", "i", "sb"]}
    for q in QUERIES:
        n = rs[("native", q)]["median_s"]
        ns = rs.get(("native-stored", q), {}).get("median_s", float("nan"))
        i = rs[("inland", q)]["median_s"]
        sb = rs[("inland", q)].get("sandbox_median_s", 0.0)
        d, ds = duck[q], duck_stored[q]
        for k, v in zip(["d", "ds", "n", "ns", "i", "sb"], [d, ds, n, ns, i, sb]):
            col[k].append(v)
        lines.append(f"| {q} | {d:.3f} | {ds:.3f} | {n:.3f} | {ns:.3f} | {i:.3f} | {sb:.3f} | {i / n:.2f} "
                     f"| {sb / d:.2f} | {sb / ds:.2f} |")
    g = {k: geomean(v) for k, v in col.items()}
    lines.append(
        f"| geomean | {g['d']:.3f} | {g['ds']:.3f} | {g['n']:.3f} | {g['ns']:.3f} | {g['i']:.3f} | {g['sb']:.3f} "
        f"| {g['i'] / g['n']:.2f} | {g['sb'] / g['d']:.2f} | {g['sb'] / g['ds']:.2f} |"
    )
    worst = sorted(QUERIES, key=lambda q: rs[("inland", q)].get("sandbox_median_s", 0.0) / duck[q], reverse=True)[:5]
    lines.append("")
    lines.append("Worst five in the sandbox against DuckDB on the generated files: " + ", ".join(
        f"{q} {rs[('inland', q)].get('sandbox_median_s', 0.0) / duck[q]:.2f}x" for q in worst) + ".")
    lines.append(f"<!-- {marker}:end -->")
    section = "\n".join(lines)
    path = ROOT / "benches/RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if f"<!-- {marker}:start -->" in text:
        text = re.sub(rf"<!-- {marker}:start -->.*?<!-- {marker}:end -->", lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    print(section)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sf", default="1")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--data", type=pathlib.Path, default=None)
    p.add_argument("--sorted", action="store_true", help="store line items sorted (the documented option)")
    a = p.parse_args()
    data = a.data or pathlib.Path.home() / f".cache/inland/tpch-sf{a.sf}"
    generate(a.sf, data)
    stored = data.parent / (data.name + ("-stored-sorted" if a.sorted else "-stored"))
    rs = inland_and_native(data, a.runs, stored, a.sorted)
    duck, version = duckdb_times(data, a.runs)
    duck_stored, _ = duckdb_times(stored, a.runs)
    write_results(a.sf, a.runs, duck, duck_stored, version, rs, a.sorted)


if __name__ == "__main__":
    main()
