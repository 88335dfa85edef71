//! Jobs end to end: useful jobs give the right numbers, hostile jobs are
//! stopped with an error naming what they hit, and nothing escapes quarantine.

use crate::support::{files_under, new_domain, run, run_as, shared, test_limits, wasm};
use arrow::array::RecordBatch;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use inland_runtime::{Event, JobError, JobRequest, JobStatus};
use std::time::Duration;

fn error_of(report: &inland_runtime::JobReport) -> JobError {
    report
        .job
        .error
        .clone()
        .unwrap_or_else(|| panic!("job succeeded: {:?}", report.job.log))
}

async fn direct_sql(sources: &std::path::Path, sql: &str) -> Vec<RecordBatch> {
    let ctx = SessionContext::new();
    for name in ["residents", "enterprises"] {
        let path = sources.join(format!("{name}.parquet"));
        ctx.register_parquet(name, path.to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap();
    }
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

fn pretty(batches: &[RecordBatch]) -> String {
    arrow::util::pretty::pretty_format_batches(batches).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn district_stats_match_the_same_sql_run_directly_in_datafusion() {
    let d = shared();
    let report = run(d, "district-stats", &[("min_age", "30")]).await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job);
    assert_eq!(report.outputs.len(), 1);
    let out = d.rt.reviews().output_table(&report.outputs[0].id).unwrap();
    let expected = direct_sql(
        &d.sources,
        "SELECT district, count(*) AS residents, avg(age) AS avg_age, avg(income) AS avg_income \
         FROM residents WHERE age >= 30 GROUP BY district ORDER BY district",
    )
    .await;
    assert_eq!(pretty(&out), pretty(&expected));
    assert!(
        report
            .job
            .log
            .iter()
            .any(|l| l.message.contains("districts, residents aged 30"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_of_two_datasets_runs_and_is_recorded_with_its_lineage() {
    let d = shared();
    let report = run(d, "join-stats", &[]).await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job);
    let output = &report.outputs[0];
    assert_eq!(output.name, "district_economy");
    assert!(output.rows >= 10, "{} districts", output.rows);
    assert_eq!(
        output.datasets,
        vec!["enterprises".to_string(), "residents".to_string()]
    );
    // The queries are the job's, sealed with its record; the output names none in clear.
    assert!(output.queries.is_empty());
    // One aggregate of each dataset, joined by the job.
    let job = d.rt.jobs().get(&report.job.id).unwrap();
    assert_eq!(job.queries.len(), 2);
    assert!(job.queries.iter().all(|q| q.plan_hash.is_some()));
    assert_eq!(output.module_sha256, report.job.module_sha256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_reads_files_is_refused_for_the_filesystem_capability() {
    let report = run(shared(), "hostile-files", &[]).await;
    assert_eq!(report.job.status, JobStatus::Refused);
    match error_of(&report) {
        JobError::CapabilityDenied { import, .. } => assert!(import.starts_with("wasi:filesystem/"), "{import}"),
        other => panic!("unexpected {other:?}"),
    }
}

/// #22: a component asking for a denied capability is refused from its
/// import section, before anything is compiled (an 18 MB Python runtime
/// spent 17 s of CPU compiling before it was refused).
#[test]
fn a_denied_capability_is_refused_before_the_component_is_compiled() {
    let d = crate::support::new_domain(crate::support::test_limits());
    let before = d.rt.jobs().components_compiled();
    for (job, capability) in [
        ("hostile-sockets", "wasi:sockets"),
        ("hostile-files", "wasi:filesystem"),
    ] {
        let err = d.rt.jobs().check_component(&wasm(job)).unwrap_err();
        assert!(err.to_string().contains(capability), "{job}: {err}");
    }
    assert_eq!(d.rt.jobs().components_compiled(), before, "nothing was compiled");
    // An allowed component still compiles, and the count shows it.
    d.rt.jobs().check_component(&wasm("noop")).unwrap();
    assert_eq!(d.rt.jobs().components_compiled(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_opens_sockets_is_refused_for_the_network_capability() {
    let report = run(shared(), "hostile-sockets", &[]).await;
    assert_eq!(report.job.status, JobStatus::Refused);
    let err = error_of(&report);
    assert!(matches!(&err, JobError::CapabilityDenied { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("wasi:sockets") || text.contains("wasi:filesystem"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_sees_no_environment_variables_or_arguments() {
    let report = run(shared(), "hostile-env", &[]).await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job);
    assert!(
        report
            .job
            .log
            .iter()
            .any(|l| l.message == "environment variables visible: 0; arguments visible: 0"),
        "{:?}",
        report.job.log
    );
}

/// #22: a Python job (componentize-py, WASI stubbed out, the only build
/// admission takes) that tries the network, a host file or the file system
/// is stopped at the call, and sees no environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_job_reaches_no_network_no_file_and_no_environment() {
    let d = shared();
    let probe = inland_examples::jobs::PYTHON_PROBE;
    for attempt in ["socket", "file", "listdir"] {
        let report = run(d, probe, &[("try", attempt)]).await;
        assert_eq!(report.job.status, JobStatus::Failed, "{attempt}: {:?}", report.job);
        assert!(
            matches!(error_of(&report), JobError::Trapped { .. }),
            "{attempt}: {:?}",
            report.job.error
        );
        // Stopped at the call: nothing after it ran.
        assert!(
            !report.job.log.iter().any(|l| l.message.starts_with("done")
                || l.message == "connected"
                || l.message.starts_with("root:")
                || l.message.contains("root:x:0")),
            "{attempt}: {:?}",
            report.job.log
        );
    }
    let report = run(d, probe, &[("try", "env")]).await;
    assert_eq!(report.job.status, JobStatus::Succeeded, "{:?}", report.job);
    let messages: Vec<&str> = report.job.log.iter().map(|l| l.message.as_str()).collect();
    assert!(messages.contains(&"environment: {}"), "{messages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_by_the_time_limit_within_a_second_of_its_deadline() {
    let d = shared();
    let report = run(d, "hostile-loop", &[]).await;
    assert_eq!(
        error_of(&report),
        JobError::Timeout {
            limit: Duration::from_secs(2)
        }
    );
    // The deadline is counted from the job's start in the sandbox (compilation excluded).
    let ran = Duration::from_millis(report.job.run_ms);
    assert!(
        ran >= Duration::from_secs(2) && ran < Duration::from_secs(3),
        "stopped after {ran:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_allocation_is_stopped_by_the_memory_limit() {
    let report = run(shared(), "hostile-alloc", &[]).await;
    assert_eq!(error_of(&report), JobError::OutOfMemory { limit_bytes: 128 << 20 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enormous_output_is_stopped_by_the_output_limit_and_nothing_is_kept() {
    let d = shared();
    let report = run(d, "hostile-output", &[]).await;
    assert_eq!(error_of(&report), JobError::OutputLimit { limit_bytes: 8 << 20 });
    assert!(report.outputs.is_empty());
    assert!(
        d.rt.reviews()
            .outputs()
            .unwrap()
            .iter()
            .all(|o| o.job_id != report.job.id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_is_reported_with_its_panic_message() {
    let report = run(shared(), "hostile-panic", &[]).await;
    match error_of(&report) {
        JobError::Panicked { message } => assert!(message.contains("attempt to divide by zero"), "{message}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_jobs_do_not_disturb_a_job_running_beside_them() {
    let d = shared();
    let (looping, allocating, useful) = tokio::join!(
        run(d, "hostile-loop", &[]),
        run(d, "hostile-alloc", &[]),
        run(d, "district-stats", &[]),
    );
    assert!(matches!(error_of(&looping), JobError::Timeout { .. }));
    assert!(matches!(error_of(&allocating), JobError::OutOfMemory { .. }));
    assert_eq!(useful.job.status, JobStatus::Succeeded, "{:?}", useful.job);
    let out = d.rt.reviews().output_table(&useful.outputs[0].id).unwrap();
    let expected = direct_sql(
        &d.sources,
        "SELECT district, count(*) AS residents, avg(age) AS avg_age, avg(income) AS avg_income \
         FROM residents WHERE age >= 0 GROUP BY district ORDER BY district",
    )
    .await;
    assert_eq!(pretty(&out), pretty(&expected));
    // The host is still serving jobs afterwards.
    let again = run(d, "join-stats", &[]).await;
    assert_eq!(again.job.status, JobStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_foreign_modules_are_refused_with_a_clear_error() {
    let rt = &shared().rt;
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("not wasm", b"hello, this is not wasm".to_vec(), "does not start with"),
        ("core module", b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
        (
            "truncated component",
            wasm("district-stats")[..4096].to_vec(),
            "not a valid component",
        ),
        ("empty component", b"\0asm\x0d\0\x01\0".to_vec(), "inland:job"),
    ];
    for (what, bytes, expect) in cases {
        let report = rt
            .jobs()
            .run(JobRequest {
                wasm: bytes,
                params: vec![],
                operator: shared().operator.clone(),
                grant: shared().grant.clone(),
                source_sha256: None,
            })
            .await
            .unwrap();
        assert_eq!(report.job.status, JobStatus::Refused, "{what}");
        let err = error_of(&report).to_string();
        assert!(err.contains(expect), "{what}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_appear_only_in_quarantine() {
    let d = new_domain(test_limits());
    // Compile first, so the only new files the job itself can cause are its outputs.
    run(&d, "district-stats", &[]).await;
    let before = files_under(&d.root);
    let report = run(&d, "district-stats", &[("min_age", "40")]).await;
    let after = files_under(&d.root);
    let new: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    let expected = std::path::PathBuf::from(report.outputs[0].relative_path());
    // Beside the output, the cell facts the gate checks it with, sealed the same way.
    let facts = std::path::PathBuf::from(format!(
        "quarantine/{}/facts-{}.sealed",
        report.job.grant, report.job.id
    ));
    let mut want = vec![&expected, &facts];
    want.sort();
    let mut new = new;
    new.sort();
    assert_eq!(new, want, "new files: {new:?}");
    assert!(expected.starts_with("quarantine"));
    // The stored table is sealed with the grant's key; opened, it is the one recorded.
    let stored = std::fs::read(d.root.join(&expected)).unwrap();
    let plain =
        d.rt.reviews()
            .read_sealed(&d.grant, &report.outputs[0].sha256, &stored)
            .unwrap();
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&plain)), report.outputs[0].sha256);
    assert!(d.rt.reviews().output_table(&report.outputs[0].id).unwrap()[0].num_rows() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_of_a_job_is_recorded_as_an_event() {
    let d = new_domain(test_limits());
    let report = run(&d, "district-stats", &[]).await;
    let events = d.rt.evidence().ledger().unwrap().entries().unwrap();
    let kinds: Vec<&Event> = events.iter().map(|e| &e.event).collect();
    assert!(matches!(kinds[0], Event::DatasetRegistered { .. }));
    let id = &report.job.id;
    assert!(
        kinds
            .iter()
            .any(|e| matches!(e, Event::JobAdmitted { job_id, .. } if job_id == id))
    );
    assert!(
        kinds
            .iter()
            .any(|e| matches!(e, Event::QueryRun { job_id, .. } if job_id == id))
    );
    assert!(
        kinds
            .iter()
            .any(|e| matches!(e, Event::OutputEmitted { job_id, .. } if job_id == id))
    );
    assert!(matches!(kinds.last().unwrap(), Event::JobFinished { outcome, .. } if outcome.succeeded()));
    // The job record is kept too.
    assert_eq!(d.rt.jobs().get(id).unwrap().status, JobStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_compiled_artifact_is_never_loaded() {
    let d = new_domain(test_limits());
    let first = run(&d, "hostile-env", &[]).await;
    assert_eq!(first.job.status, JobStatus::Succeeded);
    let cached: Vec<_> = files_under(&d.root.join("cache"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let path = d.root.join("cache").join(&cached[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    // A new process (a new runtime) must not trust the altered artifact: it
    // recompiles from the component, and the job behaves as before.
    let crate::support::TestDomain {
        rt,
        root,
        _dir,
        operator,
        grant,
        ..
    } = d;
    drop(rt);
    let rt = inland_runtime::Runtime::open(&root).unwrap();
    let second = run_as(&rt, &operator, &grant, wasm("hostile-env"), &[]).await;
    assert_eq!(second.job.status, JobStatus::Succeeded, "{:?}", second.job);
    assert_ne!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the altered artifact was replaced"
    );
}

/// Issue #19, from a hostile review: a valid artifact renamed to another
/// component's hash (say an approved one) is not loaded for it: the cache's
/// HMAC covers the name as well as the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compiled_artifact_renamed_to_another_component_is_never_loaded() {
    let d = new_domain(test_limits());
    assert_eq!(run(&d, "hostile-env", &[]).await.job.status, JobStatus::Succeeded);
    let noop = run(&d, "noop", &[]).await;
    assert_eq!(noop.job.status, JobStatus::Succeeded);
    let cache = d.root.join("cache");
    let named = |sha: &str, ext: &str| {
        files_under(&cache)
            .into_iter()
            .find(|p| p.to_string_lossy().starts_with(sha) && p.extension().is_some_and(|e| e == ext))
            .unwrap()
    };
    let env_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(wasm("hostile-env")))
    };
    let noop_sha = noop.job.module_sha256.clone();
    // hostile-env's artifact and tag, under noop's names.
    for ext in ["cwasm", "mac"] {
        let from = cache.join(named(&env_sha, ext));
        let to = cache.join(named(&noop_sha, ext));
        std::fs::copy(&from, &to).unwrap();
    }
    let crate::support::TestDomain {
        rt,
        root,
        _dir,
        operator,
        grant,
        ..
    } = d;
    drop(rt);
    let rt = inland_runtime::Runtime::open(&root).unwrap();
    let again = run_as(&rt, &operator, &grant, wasm("noop"), &[]).await;
    assert_eq!(again.job.status, JobStatus::Succeeded, "{:?}", again.job);
    // hostile-env logs what it finds in its environment; noop logs nothing.
    assert_eq!(again.job.log, noop.job.log, "the renamed artifact ran");
}

/// Issue #19: a job that writes what it read into every text it controls —
/// log, stdout, stderr, the SQL of a query that runs and of one that is
/// refused, and its returned error. The ledger, and the audit export a
/// regulator takes away, carry none of it (only hashes); the job record
/// inside the domain keeps it for reviewers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_job_writes_after_reading_data_never_reaches_the_ledger() {
    use arrow::array::{Array, AsArray, StringArray};
    let d = new_domain(test_limits());
    // The resident the job reads: the smallest ID, found here without the engine.
    let residents = inland_examples::generate::residents(crate::support::ROWS, crate::support::SEED);
    let ids: &StringArray = residents.column_by_name("resident_id").unwrap().as_string();
    let row = (0..ids.len()).min_by_key(|&i| ids.value(i)).unwrap();
    let text = |c: &str| {
        residents
            .column_by_name(c)
            .unwrap()
            .as_string::<i32>()
            .value(row)
            .to_string()
    };
    let (id, mobile, name) = (text("resident_id"), text("mobile"), text("name"));
    let report = run(
        &d,
        inland_examples::jobs::LEAK,
        &[(
            "sql",
            "SELECT concat_ws('/', resident_id, mobile, name) AS v FROM residents ORDER BY resident_id LIMIT 1",
        )],
    )
    .await;
    assert_eq!(report.job.status, JobStatus::Failed);
    let planted = [id.as_str(), mobile.as_str(), name.as_str()];
    // Once more, succeeding, so that its output (named after the ID) is kept.
    let kept = run(
        &d,
        inland_examples::jobs::LEAK,
        &[
            (
                "sql",
                "SELECT concat_ws('/', resident_id, mobile, name) AS v FROM residents ORDER BY resident_id LIMIT 1",
            ),
            ("end", "ok"),
        ],
    )
    .await;
    assert_eq!(kept.job.status, JobStatus::Succeeded, "{:?}", kept.job.error);
    assert!(kept.outputs[0].name.contains(&id), "{}", kept.outputs[0].name);
    // Its id says nothing of the name, nor of how many outputs came before.
    let suffix = kept.outputs[0].id.strip_prefix(&format!("{}/", kept.job.id)).unwrap();
    assert!(
        suffix.len() == 12 && suffix.bytes().all(|b| b.is_ascii_hexdigit()),
        "{suffix}"
    );

    // The reviewer's record has every copy the job wrote.
    let record = serde_json::to_string(&d.rt.jobs().get(&report.job.id).unwrap()).unwrap();
    for p in planted {
        for place in [
            "planted in the log",
            "planted on stdout",
            "planted on stderr",
            "planted in the error",
        ] {
            assert!(
                record.contains(&format!("{place}: {id}/{mobile}/{name}")),
                "{place}: {record}"
            );
        }
        assert!(record.matches(p).count() >= 6, "{p} not in the SQL texts: {record}");
    }

    // The ledger names the texts by hash only.
    let ledger = d.rt.evidence().ledger().unwrap();
    let entries = serde_json::to_string(&ledger.entries().unwrap()).unwrap();
    for p in planted {
        assert!(!entries.contains(p), "the ledger carries `{p}`: {entries}");
    }
    assert!(
        entries.contains("its message is kept for reviewers (hmac "),
        "{entries}"
    );
    let export = tempfile::tempdir().unwrap();
    ledger.export_jsonl(export.path()).unwrap();
    let files = files_under(export.path());
    assert!(!files.is_empty());
    for file in files {
        let bytes = std::fs::read(export.path().join(&file)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for p in planted {
            assert!(!text.contains(p), "{} carries `{p}`", file.display());
        }
    }

    // At rest the texts are sealed with the grant's key: the state database
    // never holds them in clear, and once the grant ends they are gone.
    let state = std::fs::read(d.root.join("state").join("inland.redb")).unwrap();
    let state = String::from_utf8_lossy(&state);
    for p in planted {
        assert!(!state.contains(p), "the state database holds `{p}` in clear");
    }
    d.rt.jobs()
        .terminate_grant(&d.grant, inland_runtime::TerminationReason::Agreement, "ended")
        .await
        .unwrap();
    let after = serde_json::to_string(&d.rt.jobs().get(&report.job.id).unwrap()).unwrap();
    for p in planted {
        assert!(!after.contains(p), "`{p}` outlived the grant: {after}");
    }
    assert!(after.contains("no longer opens it"), "{after}");
    // The output's record keeps no column names or per-cell findings either.
    let output = d.rt.reviews().output(&kept.outputs[0].id).unwrap();
    assert!(
        output.destroyed && output.columns.is_empty() && output.gate.is_none(),
        "{output:?}"
    );
}

/// Submissions of the same new component at once compile it once: the
/// others wait for that compile (50 at once used to hold both cores for
/// seconds, and an operator could repeat it at will).
#[test]
fn a_new_component_submitted_many_times_at_once_is_compiled_once() {
    let d = new_domain(test_limits());
    let noop = inland_examples::jobs::wasm("noop").unwrap();
    assert_eq!(d.rt.jobs().components_compiled(), 0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| d.rt.jobs().check_component(noop).unwrap());
        }
    });
    assert_eq!(d.rt.jobs().components_compiled(), 1);
}
