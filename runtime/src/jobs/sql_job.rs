//! SQL jobs: a `.sql` file of named `SELECT` statements run as a job by the
//! SQL job component Inland ships (`examples/jobs/sql-job`). Nothing about
//! them is a host-side shortcut: the file becomes that component's
//! parameters, and the job is admitted, sandboxed, checked, quarantined and
//! recorded like any other.
//!
//! The file: each statement follows a line `-- output: NAME`; other comments
//! and blank lines are free. A submission's parameters become values bound
//! to the statements' `$NAME` placeholders (`int:5`, `float:1.5`,
//! `bool:true`, `null`, otherwise text).

use crate::error::{Error, Result};

/// The marker line that names the next statement's output.
const MARKER: &str = "-- output:";
/// The most statements one file may hold.
pub const MAX_STATEMENTS: usize = 64;
/// The largest SQL file accepted (its statements go into the job's
/// admission record, which the ledger keeps).
pub const MAX_SQL_FILE_BYTES: usize = 64 << 10;

/// The SQL job component, as built from `examples/jobs/sql-job` and checked
/// in: the product needs no wasm toolchain to ship it, its hash does not
/// change with the machine that built Inland (so an approval of it holds),
/// and a test fails if it is not the component this source tree builds
/// (`scripts/update-sql-job.sh` refreshes it).
static COMPONENT: &[u8] = include_bytes!("sql-job.wasm");

/// The component bytes of the SQL job.
pub fn component() -> Result<&'static [u8]> {
    Ok(COMPONENT)
}

/// The SHA-256 of the SQL job component, computed once.
pub(crate) fn component_sha256() -> &'static str {
    static SHA: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SHA.get_or_init(|| inland_files::sha256_hex(COMPONENT))
}

/// What an approval names for a SQL job, under a grant that runs approved
/// components only: the SHA-256 of its statements (output names and SQL,
/// in order). Not the SQL job component, which runs any SQL; not the bound
/// values, which are data. `None` when `params` hold no statement.
pub fn fingerprint(params: &[(String, String)]) -> Option<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"inland sql job statements\0");
    let mut any = false;
    for (key, sql) in params.iter().filter(|(k, _)| k.starts_with("output:")) {
        any = true;
        for part in [key.as_bytes(), b"\0", sql.as_bytes(), b"\0"] {
            hasher.update(part);
        }
    }
    any.then(|| hex::encode(hasher.finalize()))
}

/// The fingerprint of a SQL file, as an approver computes it from the file
/// they read (`inland job fingerprint --sql FILE`).
pub fn file_fingerprint(text: &str) -> Result<String> {
    fingerprint(&params(text, &[])?).ok_or_else(|| Error::Invalid("the SQL file has no statement".into()))
}

/// The statements of a SQL file, as (output name, SQL), in file order.
pub fn statements(text: &str) -> Result<Vec<(String, String)>> {
    if text.len() > MAX_SQL_FILE_BYTES {
        return Err(Error::Invalid(format!(
            "the SQL file is larger than {MAX_SQL_FILE_BYTES} bytes"
        )));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String, usize)> = None;
    let finish = |current: Option<(String, String, usize)>, out: &mut Vec<(String, String)>| -> Result<()> {
        if let Some((name, sql, line)) = current {
            let sql = sql.trim().trim_end_matches(';').trim().to_string();
            if sql.is_empty() {
                return Err(Error::Invalid(format!(
                    "line {line}: output `{name}` has no statement after it"
                )));
            }
            out.push((name, sql));
        }
        Ok(())
    };
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(rest) = line.trim_start().strip_prefix(MARKER) {
            finish(current.take(), &mut out)?;
            let name = rest.trim().to_string();
            inland_sandbox::validate_output_name(&name).map_err(|e| Error::Invalid(format!("line {n}: {e}")))?;
            if out.iter().any(|(o, _)| *o == name) {
                return Err(Error::Invalid(format!("line {n}: output `{name}` is named twice")));
            }
            if out.len() >= MAX_STATEMENTS {
                return Err(Error::Invalid(format!(
                    "line {n}: a SQL job holds at most {MAX_STATEMENTS} statements"
                )));
            }
            current = Some((name, String::new(), n));
            continue;
        }
        match &mut current {
            Some((_, sql, _)) => {
                sql.push_str(line);
                sql.push('\n');
            }
            None => {
                let t = line.trim();
                if !(t.is_empty() || t.starts_with("--")) {
                    return Err(Error::Invalid(format!(
                        "line {n}: a statement before any `{MARKER} NAME` line; name each output first"
                    )));
                }
            }
        }
    }
    finish(current, &mut out)?;
    if out.is_empty() {
        return Err(Error::Invalid(format!(
            "the file has no statements: put `{MARKER} NAME` before each SELECT"
        )));
    }
    Ok(out)
}

/// The SQL job component's parameters for a file and the submission's
/// own parameters (which become bound values). Outputs are keyed
/// `output:NNN:NAME` so that the component, which reads its parameters in
/// key order, runs them in file order.
pub fn params(text: &str, binds: &[(String, String)]) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = statements(text)?
        .into_iter()
        .enumerate()
        .map(|(i, (name, sql))| (format!("output:{i:03}:{name}"), sql))
        .collect();
    for (k, v) in binds {
        // The host's own rule for placeholder names, checked here so a bad
        // one is refused before a job exists.
        if !inland_sandbox::placeholder_name(k) {
            return Err(Error::Invalid(format!(
                "parameter `{}` cannot name a placeholder: a letter or `_`, then at most 63 letters, digits or `_`",
                k.escape_debug()
            )));
        }
        out.push((format!("bind.{k}"), v.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_statements_are_read_in_order_and_bad_files_say_where() {
        let text = "-- District figures\n\n-- output: by_district\nSELECT district, count(*) AS n\nFROM residents GROUP BY district;\n\n-- output: total\nSELECT count(*) AS n FROM residents WHERE age >= $min_age\n";
        let s = statements(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, "by_district");
        assert_eq!(
            s[0].1,
            "SELECT district, count(*) AS n\nFROM residents GROUP BY district"
        );
        assert_eq!(s[1].0, "total");
        let p = params(text, &[("min_age".into(), "int:18".into())]).unwrap();
        assert_eq!(p[0].0, "output:000:by_district");
        assert_eq!(p[1].0, "output:001:total");
        assert_eq!(p[2], ("bind.min_age".to_string(), "int:18".to_string()));
        // A parameter name that could forge a line under the recorded query is refused.
        assert!(params(text, &[("x\nUNION SELECT".into(), "1".into())]).is_err());
        for (bad, says) in [
            ("SELECT 1", "line 1: a statement before"),
            ("-- output: a\n", "line 1: output `a` has no statement"),
            (
                "-- output: a\nSELECT 1\n-- output: a\nSELECT 2",
                "line 3: output `a` is named twice",
            ),
            ("-- output: ../x\nSELECT 1", "line 1:"),
            ("-- just a comment\n", "no statements"),
        ] {
            let e = statements(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
