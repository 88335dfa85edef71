//! `inland grant`: issue, inspect and terminate grants; rotate the master key.

use clap::{Subcommand, ValueEnum};
use inland_runtime::{DpBudget, Privacy, TerminationReason};

/// The grant subcommands.
#[derive(Subcommand)]
pub enum GrantCmd {
    /// Issue a grant; refused when the term exceeds 5 years, a dataset is unknown, or the operator is not approved.
    Issue {
        /// The operator that will hold it.
        #[arg(long)]
        operator: String,
        /// Datasets, comma-separated.
        #[arg(long, value_delimiter = ',')]
        datasets: Vec<String>,
        /// The authorized purpose.
        #[arg(long)]
        purpose: String,
        /// The application scenario.
        #[arg(long)]
        scenario: String,
        /// First day in force (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Last day in force (YYYY-MM-DD).
        #[arg(long)]
        until: String,
        /// A product the agreement lists (repeatable).
        #[arg(long = "product")]
        products: Vec<String>,
        /// The most jobs the grant may run in a day (UTC); each job's success is a bit its operator learns.
        #[arg(long)]
        jobs_per_day: Option<u32>,
        /// The most jobs the grant may run over its term.
        #[arg(long)]
        jobs_per_term: Option<u32>,
        /// Jobs run only components an admin or reviewer approved by hash (through the server: POST /api/components/SHA256/approval).
        #[arg(long)]
        approved_components_only: bool,
        /// The privacy mode and budget: exact unless a dp budget is given.
        #[command(flatten)]
        dp: DpArgs,
    },
    /// List grants.
    List,
    /// A dp grant's privacy budget, spent and left (operators: their own grants, with --server).
    Budget {
        /// Grant id.
        id: String,
    },
    /// Show one grant.
    Show {
        /// Grant id.
        id: String,
    },
    /// Terminate a grant: refuse and stop its jobs, destroy its key and files, record the destruction.
    Terminate {
        /// Grant id.
        id: String,
        /// Why the grant ends.
        #[arg(long, value_enum)]
        reason: TerminationReasonArg,
        /// What happened, for the record.
        #[arg(long)]
        note: String,
    },
    /// Replace the domain master key, re-wrapping every grant key under the new one.
    RotateMasterKey,
}

/// The `dp` privacy mode of a new grant. Budgets are in ρ (zCDP); the
/// grant's view shows them as (ε, δ = 1e-6) too.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DpArgs {
    /// Issue a `dp` grant with this privacy budget (ρ, zCDP) over its term: every aggregate of protected data reaches its jobs with noise.
    #[arg(long, requires = "dp_query_rho")]
    pub dp_budget_rho: Option<f64>,
    /// What each query over protected data costs (ρ); needs --dp-budget-rho.
    #[arg(long, requires = "dp_budget_rho")]
    pub dp_query_rho: Option<f64>,
    /// A budget of one dataset within the whole, as NAME=RHO (repeatable); needs --dp-budget-rho.
    #[arg(long = "dp-dataset-budget", value_parser = dataset_budget, requires = "dp_budget_rho")]
    pub dp_dataset_budgets: Vec<(String, f64)>,
}

fn dataset_budget(s: &str) -> Result<(String, f64), String> {
    let (name, rho) = s.split_once('=').ok_or("expected NAME=RHO, e.g. residents=0.5")?;
    let rho: f64 = rho.parse().map_err(|_| format!("`{rho}` is not a number"))?;
    Ok((name.to_string(), rho))
}

impl DpArgs {
    /// The privacy mode these arguments ask for.
    pub fn privacy(&self) -> Privacy {
        match (self.dp_budget_rho, self.dp_query_rho) {
            (Some(budget_rho), Some(query_rho)) => Privacy::Dp(DpBudget {
                budget_rho,
                query_rho,
                datasets: self.dp_dataset_budgets.iter().cloned().collect(),
            }),
            _ => Privacy::Exact,
        }
    }
}

/// `--reason` of `grant terminate`: the runtime's [`TerminationReason`], in the words its records use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TerminationReasonArg {
    /// The term ended.
    #[value(name = "expired")]
    Expired,
    /// The operator breached the agreement.
    #[value(name = "breach")]
    Breach,
    /// A security incident.
    #[value(name = "incident")]
    Incident,
    /// Required by law.
    #[value(name = "law")]
    Law,
    /// Ended by agreement.
    #[value(name = "agreement")]
    Agreement,
}

impl From<TerminationReasonArg> for TerminationReason {
    fn from(reason: TerminationReasonArg) -> Self {
        match reason {
            TerminationReasonArg::Expired => TerminationReason::Expired,
            TerminationReasonArg::Breach => TerminationReason::Breach,
            TerminationReasonArg::Incident => TerminationReason::Incident,
            TerminationReasonArg::Law => TerminationReason::Law,
            TerminationReasonArg::Agreement => TerminationReason::Agreement,
        }
    }
}
