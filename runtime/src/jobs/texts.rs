//! What a job wrote, sealed at rest with its grant's key: its log, its
//! error, its queries (texts, errors, row counts) and the reason for its
//! label. A job may compose any of these from what it read, so they are
//! data of the grant: readable inside the domain while the grant lives,
//! gone with its key when the grant ends (crypto-shredding; the state
//! database never holds them in clear).

use crate::context::Inner;
use crate::error::Result;
use crate::jobs::run::{JobRecord, JobStatus};
use crate::release::output::QueryRecord;
use inland_sandbox::{JobError, LogLine};
use serde::{Deserialize, Serialize};

/// The texts taken out of a stored job record.
#[derive(Debug, Default, Serialize, Deserialize)]
struct JobTexts {
    log: Vec<LogLine>,
    error: Option<JobError>,
    queries: Vec<QueryRecord>,
    label_reason: Option<String>,
    /// (output id, the name the job gave it).
    #[serde(default)]
    output_names: Vec<(String, String)>,
}

fn aad(id: &str) -> String {
    format!("job-texts:{id}")
}

/// The record as stored: the texts sealed into `sealed_texts`, with the
/// names the job gave its outputs (`output_names`; their stored records
/// name none). A refused job ran nothing and wrote nothing; its admission
/// reason stays in clear.
pub(crate) fn seal(inner: &Inner, record: &JobRecord, output_names: Vec<(String, String)>) -> Result<JobRecord> {
    if record.status == JobStatus::Refused {
        return Ok(record.clone());
    }
    let mut stored = record.clone();
    let texts = JobTexts {
        log: std::mem::take(&mut stored.log),
        error: stored.error.take(),
        queries: std::mem::take(&mut stored.queries),
        label_reason: stored.label.as_mut().map(|(_, why)| std::mem::take(why)),
        output_names,
    };
    let key = inner.keys.grant_key(&record.grant)?;
    let sealed = key.seal(&serde_json::to_vec(&texts)?, &aad(&record.id))?;
    stored.sealed_texts = Some(hex::encode(sealed));
    Ok(stored)
}

/// [`seal`], or, when the texts cannot be sealed (the grant's key is gone
/// or unreadable), the record without them: the job's outputs and its
/// ledger entries exist already, so its record must too, and the texts
/// never go to the database in clear.
pub(crate) fn seal_or_drop(inner: &Inner, record: &JobRecord, output_names: Vec<(String, String)>) -> JobRecord {
    match seal(inner, record, output_names) {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!(error = %e, "a job's texts could not be sealed; they are dropped");
            let mut stored = record.clone();
            stored.log = vec![LogLine {
                level: "info".into(),
                message: "what this job wrote could not be sealed with its grant's key and was dropped".into(),
            }];
            stored.error = None;
            stored.queries.clear();
            if let Some((_, why)) = stored.label.as_mut() {
                why.clear();
            }
            stored
        }
    }
}

/// The record as read inside the domain: the texts opened with the grant's
/// key, or, once the key is destroyed, a note that they are gone.
pub(crate) fn open(inner: &Inner, stored: JobRecord) -> JobRecord {
    open_with_names(inner, stored).0
}

/// [`open`], and the names the job gave its outputs.
pub(crate) fn open_with_names(inner: &Inner, mut stored: JobRecord) -> (JobRecord, Vec<(String, String)>) {
    let Some(sealed) = stored.sealed_texts.take() else {
        return (stored, Vec::new());
    };
    let texts = hex::decode(&sealed)
        .ok()
        .and_then(|bytes| {
            inner
                .keys
                .grant_key(&stored.grant)
                .ok()?
                .open(&bytes, &aad(&stored.id))
                .ok()
        })
        .and_then(|plain| serde_json::from_slice::<JobTexts>(&plain).ok());
    let mut names = Vec::new();
    match texts {
        Some(t) => {
            names = t.output_names;
            stored.log = t.log;
            stored.error = t.error;
            stored.queries = t.queries;
            if let (Some((_, why)), Some(reason)) = (stored.label.as_mut(), t.label_reason) {
                *why = reason;
            }
        }
        None => {
            stored.log = vec![LogLine {
                level: "info".into(),
                message: format!(
                    "what this job wrote was sealed with grant `{}`'s key, which no longer opens it",
                    stored.grant
                ),
            }];
        }
    }
    (stored, names)
}
