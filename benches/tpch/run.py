#!/usr/bin/env python3
"""The TPC-H macro benchmark, end to end: generates scale-factor-1 Parquet
with tpchgen-cli, times queries 1, 3, 5, 6 and 10 in DuckDB, natively in
DataFusion and as Inland jobs (benches/tpch.rs, release build), and writes
the TPC-H section of benches/RESULTS.md. Medians over --runs runs after one
warm-up each. DuckDB and tpchgen-cli are benchmark peers and tools only;
they are never part of Inland's runtime.

    python3 benches/tpch/run.py [--sf 1] [--runs 5] [--data DIR]
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
TABLES = ["lineitem", "orders", "customer", "supplier", "nation", "region"]
QUERIES = ["q1", "q3", "q5", "q6", "q10"]


def pip_install(*packages):
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *packages], check=True)


def generate(sf, data):
    if all((data / f"{t}.parquet").exists() for t in TABLES):
        return
    data.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["tpchgen-cli", "--version"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pip_install("tpchgen-cli")
    print(f"generating TPC-H scale factor {sf} into {data}", flush=True)
    subprocess.run(["tpchgen-cli", "parquet", "-s", str(sf), f"--output-dir={data}"], check=True)


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
        print(f"duckdb {q}: median {out[q]:.3f} s", flush=True)
    return out, duckdb.__version__


def inland_and_native(data, runs):
    out = ROOT / "target" / "tpch-results.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(pathlib.Path.home() / ".cache/inland/bench-target"))
    subprocess.run(
        ["cargo", "bench", "-p", "inland-benches", "--bench", "tpch", "--",
         "--data", str(data), "--runs", str(runs), "--json", str(out)],
        check=True, cwd=ROOT, env=env,
    )
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


def write_results(sf, runs, duck, duck_version, rs):
    lines = [
        "<!-- tpch:start -->",
        f"## TPC-H, scale factor {sf}",
        "",
        f"Machine: {machine()}. DuckDB {duck_version} (Python package), DataFusion 55.2.0.",
        f"Command: `python3 benches/tpch/run.py --sf {sf} --runs {runs}` (medians of {runs} runs after a warm-up; seconds).",
        "Native: DataFusion with default settings on the generated files. Native, stored copy: the same, on the",
        "files as Inland stores them after registration (its layout's share of any difference). Inland: the same",
        "files registered as datasets, each query a job (`sql-probe`) under a grant, with a policy in force, its",
        "result emitted to quarantine and checked by the gate; the time is from submission to the job's report.",
        "In-sandbox: the part spent instantiating and running the job (queries included). Native, stored copy",
        "and Inland take turns within each run, so drift in the machine's speed falls on all three alike.",
        "",
        "| query | DuckDB | native DataFusion | native, stored copy | Inland | Inland in-sandbox | Inland/native | Inland/DuckDB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ratios_native, inland_all, duck_all = [], [], []
    for q in QUERIES:
        n = rs[("native", q)]["median_s"]
        ns = rs.get(("native-stored", q), {}).get("median_s", float("nan"))
        i = rs[("inland", q)]["median_s"]
        sb = rs[("inland", q)].get("sandbox_median_s", 0.0)
        d = duck[q]
        ratios_native.append(i / n)
        inland_all.append(i)
        duck_all.append(d)
        lines.append(f"| {q} | {d:.3f} | {n:.3f} | {ns:.3f} | {i:.3f} | {sb:.3f} | {i / n:.2f} | {i / d:.2f} |")
    lines.append(
        f"| geomean | {geomean(duck_all):.3f} | {geomean([rs[('native', q)]['median_s'] for q in QUERIES]):.3f} "
        f"| {geomean([rs[('native-stored', q)]['median_s'] for q in QUERIES]):.3f} "
        f"| {geomean(inland_all):.3f} | | {geomean(ratios_native):.2f} | {geomean(inland_all) / geomean(duck_all):.2f} |"
    )
    lines.append("<!-- tpch:end -->")
    section = "\n".join(lines)
    path = ROOT / "benches/RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if "<!-- tpch:start -->" in text:
        text = re.sub(r"<!-- tpch:start -->.*?<!-- tpch:end -->", lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    print(section)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sf", default="1")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--data", type=pathlib.Path, default=None)
    a = p.parse_args()
    data = a.data or pathlib.Path.home() / f".cache/inland/tpch-sf{a.sf}"
    generate(a.sf, data)
    duck, version = duckdb_times(data, a.runs)
    rs = inland_and_native(data, a.runs)
    write_results(a.sf, a.runs, duck, version, rs)


if __name__ == "__main__":
    main()
