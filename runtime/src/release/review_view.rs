//! What a reviewer sees: the content with the cells the checks flagged
//! marked, the check report, the lineage, the label, and the votes (hidden
//! while a multi-reviewer vote is open).

use crate::release::output::OutputRecord;
use crate::release::review;
use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use inland_gate::canon;
use inland_gate::{Remedy, Status};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

/// Rows of content shown.
const SHOWN_ROWS: usize = 30;

/// The review page of one output, as text.
pub fn render(record: &OutputRecord, table: &[RecordBatch]) -> String {
    // Everything a job chose (SQL, names, cells) is shown with its hidden
    // characters as escapes: a terminal must not obey a job's escape codes
    // (clearing the screen, hiding text, returning to overwrite a line).
    escape_hidden(&render_raw(record, table))
}

/// Whether a character would act on a terminal or a page instead of being
/// seen: control characters but the line break, and the format characters
/// that hide text or reorder it (zero-width, direction marks and overrides,
/// fillers, tags, variation selectors). The console uses the same set.
pub fn hidden(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c as u32,
            0x00AD | 0x061C | 0x115F | 0x1160 | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
            | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F | 0xFEFF | 0xFFA0 | 0xFFF9..=0xFFFB
            | 0xE0000..=0xE007F)
}

/// `text` with every [`hidden`] character written as its code point, e.g.
/// a right-to-left override as `⟨U+202E⟩`.
pub fn escape_hidden(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if hidden(c) {
            let _ = write!(out, "⟨U+{:04X}⟩", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn render_raw(record: &OutputRecord, table: &[RecordBatch]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "output   {}", record.id);
    if let Some(r) = &record.review {
        let _ = writeln!(out, "state    {} ({} approval(s) required)", r.state, r.required);
    }
    match &record.label {
        Some((l, why)) => {
            let _ = writeln!(out, "label    {l} — {why}");
        }
        None => {
            let _ = writeln!(out, "label    public — the job read nothing");
        }
    }
    let _ = writeln!(
        out,
        "lineage  job {} · operator {} · grant {} · module {}",
        record.job_id,
        record.operator,
        record.grant,
        &record.module_sha256[..record.module_sha256.len().min(16)]
    );
    let _ = writeln!(out, "         datasets: {}", record.datasets.join(", "));
    let rho: f64 = record.queries.iter().filter_map(|q| q.rho).sum();
    if rho > 0.0 {
        let _ = writeln!(
            out,
            "privacy  dp: the job's queries cost ρ = {rho} (ε = {:.3} at δ = 1e-6); every aggregate it read had noise",
            inland_dp::epsilon_of(rho, crate::privacy::DISPLAY_DELTA)
        );
    }
    for q in &record.queries {
        let label = q.label.map(|l| l.to_string()).unwrap_or_else(|| "-".into());
        let label = match q.rho {
            Some(r) => format!("{label}, ρ {r}"),
            None => label,
        };
        let plan = q
            .plan_hash
            .as_deref()
            .map(|h| &h[..h.len().min(12)])
            .unwrap_or("refused");
        let _ = writeln!(
            out,
            "         query [{label}, plan {plan}] {}",
            q.sql.replace('\n', " ")
        );
    }
    let mut flagged: BTreeMap<(u32, String), &'static str> = BTreeMap::new();
    if let Some(report) = &record.gate {
        let _ = writeln!(
            out,
            "\nchecks   verdict {:?} · {} traced cell(s), {} untraced",
            report.verdict, report.traced_cells, report.untraced_cells
        );
        for c in &report.checks {
            let mark = match (c.status, c.remedy) {
                (Status::Pass, Remedy::Adjusted) => "~",
                (Status::Pass, _) => " ",
                (Status::Fail, Remedy::Blocked) => "✗",
                (Status::Fail, _) => "!",
                (Status::NeedsReview, _) => "?",
            };
            let _ = writeln!(
                out,
                " {mark} {:<20} {:<12} {} [{}]",
                c.check,
                c.status.to_string(),
                c.summary,
                c.parameter
            );
            for cell in c.cells.iter().take(10) {
                let row = if cell.row == u32::MAX {
                    "header".to_string()
                } else {
                    format!("row {}", cell.row)
                };
                let _ = writeln!(out, "       {row}, `{}`: {}", cell.column, cell.detail);
                if c.status != Status::Pass {
                    flagged.insert(
                        (cell.row, cell.column.clone()),
                        if c.status == Status::Fail { "!" } else { "?" },
                    );
                }
            }
            if c.cell_count > 10 {
                let _ = writeln!(out, "       … {} more", c.cell_count - 10);
            }
        }
    }
    if let Some(review) = &record.review {
        let votes = review::visible_votes(review);
        if votes.is_empty() && !review.votes.is_empty() {
            let _ = writeln!(
                out,
                "\nvotes    {} of {} cast; hidden until every reviewer has voted",
                review.votes.len(),
                review.required
            );
        }
        for v in votes {
            let _ = write!(out, "\nvote     {} by {}: {}", v.decision, v.reviewer, v.reason);
            if !v.overrides.is_empty() {
                let _ = write!(
                    out,
                    "\n         OVERRIDE of {} — justification: {}",
                    v.overrides.join(", "),
                    v.justification.as_deref().unwrap_or("")
                );
            }
        }
        if !votes.is_empty() {
            out.push('\n');
        }
    }
    if let Some(release) = &record.release {
        let _ = writeln!(
            out,
            "release  sha256 {} · {} rows · {} change(s) to cells",
            release.sha256,
            release.rows,
            release.report.checks.iter().map(|c| c.cell_count).sum::<u64>()
        );
    }
    for e in &record.exports {
        let _ = writeln!(out, "export   manifest {} → {}", e.manifest_sha256, e.to);
    }
    let _ = writeln!(out, "\ncontent  (cells marked ! failed a check, ? need review)");
    out.push_str(&marked_table(table, &flagged));
    out
}

fn marked_table(table: &[RecordBatch], flagged: &BTreeMap<(u32, String), &'static str>) -> String {
    let Some(first) = table.first() else {
        return "(no rows)\n".into();
    };
    let Ok(whole) = arrow::compute::concat_batches(&first.schema(), table) else {
        return "(unreadable)\n".into();
    };
    let shown = whole.slice(0, whole.num_rows().min(SHOWN_ROWS));
    let schema = shown.schema();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (c, f) in schema.fields().iter().enumerate() {
        let Ok(text) = canon::column(shown.column(c)) else {
            return "(unreadable)\n".into();
        };
        let marked: Vec<Option<String>> = text
            .into_iter()
            .enumerate()
            .map(|(r, v)| {
                let v = v.unwrap_or_else(|| "∅".into());
                match flagged.get(&(r as u32, f.name().clone())) {
                    Some(m) => Some(format!("{m}{v}{m}")),
                    None => Some(v),
                }
            })
            .collect();
        fields.push(Field::new(f.name(), DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from(marked)));
    }
    let Ok(batch) = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns) else {
        return "(unreadable)\n".into();
    };
    let mut s = arrow::util::pretty::pretty_format_batches(&[batch])
        .map(|t| t.to_string())
        .unwrap_or_default();
    if whole.num_rows() > SHOWN_ROWS {
        let _ = write!(s, "\n… {} more rows", whole.num_rows() - SHOWN_ROWS);
    }
    s.push('\n');
    s
}

/// One page of an output's rows, every cell as text (`None` for a null):
/// the review page shows the first rows, and reviewers page through the
/// rest, since every row is released when they approve.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowsPage {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// The rows from `offset`, at most `limit` of them.
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows in the whole output.
    pub total: u64,
}

/// Rows `offset..offset + limit` of `table`, as text.
pub fn rows(table: &[RecordBatch], offset: usize, limit: usize) -> crate::error::Result<RowsPage> {
    let Some(first) = table.first() else {
        return Ok(RowsPage {
            columns: Vec::new(),
            rows: Vec::new(),
            total: 0,
        });
    };
    let whole = arrow::compute::concat_batches(&first.schema(), table)
        .map_err(|e| crate::error::Error::Internal(format!("reading the output: {e}")))?;
    let total = whole.num_rows();
    let start = offset.min(total);
    let page = whole.slice(start, limit.min(total - start));
    let mut columns = Vec::new();
    let mut cells: Vec<Vec<Option<String>>> = Vec::new();
    for (c, f) in page.schema().fields().iter().enumerate() {
        columns.push(f.name().clone());
        let text = canon::column(page.column(c))
            .map_err(|e| crate::error::Error::Internal(format!("reading column `{}`: {e}", f.name())))?;
        cells.push(text);
    }
    let rows = (0..page.num_rows())
        .map(|r| cells.iter().map(|col| col.get(r).cloned().flatten()).collect())
        .collect();
    Ok(RowsPage {
        columns,
        rows,
        total: total as u64,
    })
}
