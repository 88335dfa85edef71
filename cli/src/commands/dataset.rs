//! `inland dataset`: register, propose, approve and inspect datasets.

use crate::args::DatasetCmd;
use crate::render::policy_problems;
use anyhow::{Context, Result};
use inland_runtime::{CatalogInfo, DatasetMeta, Progress, ProgressEvent, Runtime};

/// A progress bar on stderr for a registration (drawn only on a terminal).
fn progress_bar(name: &str) -> (indicatif::ProgressBar, Progress) {
    let bar = indicatif::ProgressBar::new_spinner().with_message(format!("registering `{name}`"));
    let counting = indicatif::ProgressStyle::with_template("{spinner} {msg}: {human_pos} rows ({per_sec}, {elapsed})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    let measured =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {human_pos}/{human_len} rows ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(counting);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let shown = bar.clone();
    let progress = Progress::to(move |event| match event {
        ProgressEvent::Started(Some(rows)) => {
            shown.set_length(rows);
            shown.set_style(measured.clone());
        }
        ProgressEvent::Started(None) => {}
        ProgressEvent::Rows(rows) => shown.set_position(rows),
    });
    (bar, progress)
}

/// Runs one dataset subcommand.
pub fn run(rt: &Runtime, cmd: DatasetCmd) -> Result<()> {
    let catalog = rt.catalog();
    match cmd {
        DatasetCmd::Add {
            name,
            file,
            description,
            kind,
            source_org,
            update_frequency,
            restrictions,
            grade,
            sort_by,
            entity,
        } => {
            let (bar, progress) = progress_bar(&name);
            let meta = DatasetMeta {
                description,
                catalog: CatalogInfo {
                    kind,
                    source_org,
                    update_frequency,
                    usage_restrictions: restrictions,
                    grade: grade.into(),
                },
                sort_by,
                entity,
                progress,
                ..Default::default()
            };
            let registered = catalog.register_with(&name, &file, meta);
            bar.finish_and_clear();
            let d = registered.with_context(|| format!("registering {} as `{name}`", file.display()))?;
            println!(
                "registered `{}`: {} rows, {} columns, sha256 {}",
                d.name,
                d.rows,
                d.columns.len(),
                d.sha256
            );
        }
        DatasetCmd::Propose {
            operator,
            name,
            file,
            description,
        } => {
            let d = catalog.propose(&operator, &name, &file, &description)?;
            println!(
                "proposed `{}` ({} rows) for `{operator}`; pending an admin's approval",
                d.name, d.rows
            );
        }
        DatasetCmd::Approve {
            name,
            policy: Some(policy),
        } => match catalog.approve_with_policy(&name, &policy)? {
            Ok((d, v)) => println!(
                "approved `{}` and applied {} as policy version {}; grants of `{}` may include it",
                d.name,
                policy.display(),
                v.version,
                d.owner.unwrap_or_default()
            ),
            Err(list) => return Err(policy_problems(&list)),
        },
        DatasetCmd::Approve { name, policy: None } => {
            let d = catalog.approve(&name)?;
            println!(
                "approved `{}`; grants of `{}` may include it",
                d.name,
                d.owner.unwrap_or_default()
            );
        }
        DatasetCmd::List => {
            for d in catalog.list()? {
                println!(
                    "{:<24} {:>10} rows  {:>3} columns  {}",
                    d.name,
                    d.rows,
                    d.columns.len(),
                    d.description
                );
            }
        }
        DatasetCmd::Show { name } => {
            let d = catalog.get(&name)?;
            println!(
                "name:        {}\ndescription: {}\nsource:      {} ({})\nrows:        {}\nsha256:      {}",
                d.name, d.description, d.source, d.format, d.rows, d.sha256
            );
            if let Some(k) = &d.entity_key {
                println!("keyed by:    {} (rows stored in the order of its hidden key)", k.column);
            }
            if !d.sorted_by.is_empty() {
                println!("sorted by:   {}", d.sorted_by.join(", "));
            }
            println!("columns:");
            for c in &d.columns {
                // Unique: every value once, none missing (an entity column
                // like this lets suppression count rows).
                println!(
                    "  {:<24} {}{}{}",
                    c.name,
                    c.data_type,
                    if c.nullable { " (nullable)" } else { "" },
                    if d.unique_columns.contains(&c.name) {
                        " (unique)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Ok(())
}
