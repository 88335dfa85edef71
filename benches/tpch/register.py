#!/usr/bin/env python3
"""Registration of a large file (#23): TPC-H lineitem at scale factor 10
(60M rows) registered by Inland (benches/register.rs, release build: stored
in the domain's layout, columns proven unique, identifier index refreshed),
timed with its peak resident memory, beside DuckDB's
`COPY (SELECT * FROM read_parquet(...)) TO 'x.parquet'` of the same file.
Writes the registration section of benches/RESULTS.md. DuckDB and
tpchgen-cli are benchmark peers and tools only.

    python3 benches/tpch/register.py [--sf 10] [--data DIR] [--sorted]
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benches/tpch"))
from run import generate, machine, pip_install  # noqa: E402


def inland(path, sorted_layout):
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", str(pathlib.Path.home() / ".cache/inland/target"))
    subprocess.run(["cargo", "bench", "-p", "inland-benches", "--bench", "register", "--no-run"],
                   check=True, cwd=ROOT, env=env)
    args = ["cargo", "bench", "-p", "inland-benches", "--bench", "register", "--",
            "--file", str(path), "--domain", str(path.parent)]
    if sorted_layout:
        args += ["--sort-by", "l_returnflag,l_shipdate"]
    out = subprocess.run(args, check=True, cwd=ROOT, env=env, capture_output=True, text=True).stdout
    return json.loads(next(l for l in out.splitlines() if l.startswith("{")))


def duckdb_copy(path):
    """DuckDB's COPY in a child process, so its peak memory is its own."""
    try:
        import duckdb  # noqa: F401
    except ImportError:
        pip_install("duckdb")
    with tempfile.TemporaryDirectory(dir=path.parent) as d:
        target = pathlib.Path(d) / "copy.parquet"
        code = (
            "import duckdb, time, resource, json, sys\n"
            "con = duckdb.connect()\n"
            "t = time.perf_counter()\n"
            f"con.execute(\"COPY (SELECT * FROM read_parquet('{path}')) TO '{target}' (FORMAT parquet)\")\n"
            "s = time.perf_counter() - t\n"
            "print(json.dumps({'seconds': s, 'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,"
            " 'version': duckdb.__version__}))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sf", default="10")
    p.add_argument("--data", type=pathlib.Path, default=None)
    p.add_argument("--sorted", action="store_true", help="also register sorted by l_returnflag, l_shipdate")
    a = p.parse_args()
    data = a.data or pathlib.Path.home() / f".cache/inland/tpch-sf{a.sf}"
    generate(a.sf, data, ["lineitem"])
    path = data / "lineitem.parquet"
    size = path.stat().st_size
    duck = duckdb_copy(path)
    print(f"duckdb COPY: {duck}", flush=True)
    plain = inland(path, False)
    print(f"inland dataset add: {plain}", flush=True)
    rows = [("as stored by default", plain)]
    if a.sorted:
        s = inland(path, True)
        print(f"inland dataset add --sort-by: {s}", flush=True)
        rows.append(("`--sort-by l_returnflag,l_shipdate`", s))
    lines = [
        "<!-- register:start -->",
        f"## Registration of TPC-H lineitem, scale factor {a.sf} (#23)",
        "",
        f"Machine: {machine()}. DuckDB {duck['version']} (Python package).",
        f"Command: `python3 benches/tpch/register.py --sf {a.sf}" + (" --sorted" if a.sorted else "") + "`; one run each.",
        f"Source: {plain['rows']:,} rows, {size / 1e9:.2f} GB of Parquet (tpchgen-cli). Inland: `dataset add` in",
        "a process of its own (benches/register.rs): read batch by batch, stored in the domain's layout, every",
        "column's uniqueness decided, the identifier index refreshed. DuckDB: `COPY (SELECT * FROM",
        "read_parquet(...)) TO '...' (FORMAT parquet)` in a process of its own. Peak: the process's peak",
        "resident memory.",
        "",
        "| | time | peak RSS | against DuckDB's COPY | targets (time ≤ 1.5×, RSS < 1 GiB) |",
        "|---|---|---|---|---|",
        f"| DuckDB COPY | {duck['seconds']:.1f} s | {duck['peak_rss_mib']} MiB | 1.00 | |",
    ]
    for label, r in rows:
        ratio = r["seconds"] / duck["seconds"]
        met = ("met" if ratio <= 1.5 else "not met") + " / " + ("met" if r["peak_rss_mib"] < 1024 else "not met")
        lines.append(f"| Inland, {label} | {r['seconds']:.1f} s | {r['peak_rss_mib']} MiB | {ratio:.2f} | {met} |")
    lines.append("<!-- register:end -->")
    section = "\n".join(lines)
    res = ROOT / "benches/RESULTS.md"
    text = res.read_text()
    if "<!-- register:start -->" in text:
        text = re.sub(r"<!-- register:start -->.*?<!-- register:end -->", lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    res.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
