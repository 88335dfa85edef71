//! `inland dev`: an operator tries a job on their own machine, before
//! submitting it, against dummy data made from a domain's published catalog
//! (`inland catalog publish`: names, columns, types, classes, access modes,
//! published values, and the public part of the policy). The job runs in a
//! throwaway domain with the same host, policy, suppression and gate code as
//! the real one, so a query the domain would refuse is refused here by the
//! same rule; and since the data is made up, everything may be shown.

pub mod dummy;

use crate::domain::{Domain, DomainConfig, Limits};
use crate::error::{Error, Result};
use crate::governance::operators::{GrantRequest, OperatorStatus, OperatorType};
use crate::{Date, Runtime};
use dummy::PublishedColumn;
use serde::Deserialize;
use std::path::Path;

/// The organization a dev domain's jobs run as.
pub const DEV_OPERATOR: &str = "dev";

/// A dataset as `catalog.json` publishes it.
#[derive(Debug, Clone, Deserialize)]
pub struct PublishedDataset {
    /// Its name (the SQL table name).
    pub name: String,
    /// What it holds.
    #[serde(default)]
    pub description: String,
    /// Whether jobs may read it (core data may not).
    #[serde(default = "operable_by_default")]
    pub operable: bool,
    /// Its columns.
    pub columns: Vec<PublishedColumn>,
}

fn operable_by_default() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct PublishedCatalog {
    /// SHA-256 of the `policy.toml` published with it; none without a policy.
    #[serde(default)]
    policy_sha256: Option<String>,
    datasets: Vec<PublishedDataset>,
}

/// The most dummy rows per dataset (they are built in memory).
pub const MAX_ROWS: usize = 2_000_000;

/// A throwaway domain of dummy data, with an operator and a grant for every dataset.
pub struct DevDomain {
    /// The domain.
    pub rt: Runtime,
    /// A grant of [`DEV_OPERATOR`] covering every dataset.
    pub grant: String,
    /// The datasets made, with their row counts.
    pub datasets: Vec<(String, usize)>,
    /// Whether the published policy was applied (no policy: none in force in the domain either).
    pub policy: bool,
    /// Last, so the domain is closed before its directory is removed.
    _dir: tempfile::TempDir,
}

impl DevDomain {
    /// Builds a dev domain from a published catalog directory: `rows` dummy
    /// rows per dataset from `seed`, the published policy applied.
    pub fn from_catalog(catalog: &Path, rows: usize, seed: u64) -> Result<DevDomain> {
        let file = catalog.join("catalog.json");
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        let published: PublishedCatalog = serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{} is not a published catalog: {e}", file.display())))?;
        if rows == 0 || rows > MAX_ROWS {
            return Err(Error::Invalid(format!("dummy rows per dataset are 1 to {MAX_ROWS}")));
        }
        // The policy published with this catalog, or none if none was: a
        // missing or different file would give other outcomes than the domain's.
        let policy_file = catalog.join("policy.toml");
        let policy = match &published.policy_sha256 {
            None => None,
            Some(sha) => {
                let text = std::fs::read_to_string(&policy_file).map_err(|e| Error::io(&policy_file, e))?;
                if inland_files::sha256_hex(text.as_bytes()) != *sha {
                    return Err(Error::Invalid(format!(
                        "{} is not the policy published with this catalog (its SHA-256 differs)",
                        policy_file.display()
                    )));
                }
                Some(text)
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("inland-dev-")
            .tempdir()
            .map_err(|e| Error::io(Path::new("a temporary directory"), e))?;
        let root = dir.path().join("domain");
        let sources = dir.path().join("sources");
        std::fs::create_dir_all(&sources).map_err(|e| Error::io(&sources, e))?;
        Domain::init_with(
            &root,
            DomainConfig {
                name: "dev".into(),
                limits: Limits::default(),
            },
        )?;
        let rt = Runtime::open(&root)?;
        let mut made = Vec::new();
        for (i, d) in published.datasets.iter().enumerate() {
            crate::validate_dataset_name(&d.name)?;
            let batch = dummy::rows(&d.columns, rows, seed.wrapping_add(i as u64))?;
            let path = sources.join(format!("{}.parquet", d.name));
            write_parquet(&path, &batch)?;
            rt.catalog().register(&d.name, &path, &d.description)?;
            made.push((d.name.clone(), rows));
        }
        if let Some(text) = &policy
            && let Err(problems) = rt.policies().apply_text(text, "policy.toml")?
        {
            let lines: Vec<String> = problems.iter().map(|d| d.to_string()).collect();
            return Err(Error::Invalid(format!(
                "the published policy does not apply to the published catalog:\n{}",
                lines.join("\n")
            )));
        }
        let governance = rt.governance();
        governance.add_operator(DEV_OPERATOR, OperatorType::Scenario, vec![])?;
        governance.set_operator_status(DEV_OPERATOR, OperatorStatus::Approved, None)?;
        let today = Date::today();
        let grant = governance
            .issue_grant(GrantRequest {
                operator: DEV_OPERATOR.into(),
                datasets: published
                    .datasets
                    .iter()
                    .filter(|d| d.operable)
                    .map(|d| d.name.clone())
                    .collect(),
                purpose: "trying a job on dummy data".into(),
                scenario: "inland dev".into(),
                from: today,
                until: today.add_years(1),
                products: vec![],
                quota: Default::default(),
                approved_components_only: false,
                privacy: Default::default(),
            })?
            .id;
        Ok(DevDomain {
            _dir: dir,
            rt,
            grant,
            datasets: made,
            policy: policy.is_some(),
        })
    }
}

fn write_parquet(path: &Path, batch: &arrow::array::RecordBatch) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
        .map_err(|e| Error::Internal(format!("writing dummy data: {e}")))?;
    writer
        .write(batch)
        .and_then(|_| writer.close().map(|_| ()))
        .map_err(|e| Error::Internal(format!("writing dummy data: {e}")))
}
