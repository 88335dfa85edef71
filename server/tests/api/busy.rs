//! The server keeps serving people while jobs run: a review is decided
//! while sixteen jobs are running.

use crate::support::{call, fixture, ledger_events, run, submit};
use inland_runtime::Event;
use serde_json::json;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Jobs admitted and not yet finished, by the ledger, after its first `n` events.
fn running_after(events: &[Event], n: usize) -> HashSet<String> {
    let mut running = HashSet::new();
    for e in &events[..n] {
        match e {
            Event::JobAdmitted { job_id, .. } => {
                running.insert(job_id.clone());
            }
            Event::JobFinished { job_id, .. } => {
                running.remove(job_id);
            }
            _ => {}
        }
    }
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_is_decided_while_sixteen_jobs_are_running() {
    let f = fixture();
    let (job, view) = run(&f.op_a, &f.grant_a, "district-stats", &[]).await;
    assert_eq!(view["state"], "succeeded", "{view}");
    let output = f.rt.jobs().get(&job).unwrap().outputs[0].clone();

    // Sixteen jobs that compute until they are stopped.
    let mut loops = Vec::new();
    for _ in 0..16 {
        let r = submit(&f.op_b, &f.grant_b, "hostile-loop", &[]).await;
        assert_eq!(r.status, 202, "{}", r.body);
        loops.push(r.json()["job_id"].as_str().unwrap().to_string());
    }
    // Until the ledger shows them all admitted (bounded: each has a time limit).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = ledger_events();
        let running = running_after(&events, events.len());
        if loops.iter().all(|j| running.contains(j)) {
            break;
        }
        assert!(Instant::now() < deadline, "the sixteen jobs never ran together");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let body = json!({ "decision": "approve", "reason": "checked every cell against the report" });
    let decided = call(
        "POST",
        &format!("/api/outputs/{output}/votes"),
        Some(&f.rev_free),
        Some(("application/json", serde_json::to_vec(&body).unwrap())),
    )
    .await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    assert_eq!(decided.json()["state"], "approved");
    for j in &loops {
        let r = call("POST", &format!("/api/jobs/{j}/cancel"), Some(&f.op_b), None).await;
        assert!(r.status < 300 || r.status == 409, "{}: {}", r.status, r.body);
    }

    // The ledger orders it: the decision came while all sixteen were running.
    let events = ledger_events();
    let at = events
        .iter()
        .position(|e| matches!(e, Event::ReviewDecided { output_id, .. } if *output_id == output))
        .expect("the decision is recorded");
    let running = running_after(&events, at);
    for j in &loops {
        assert!(running.contains(j), "{j} was not running when the review was decided");
    }
    for j in &loops {
        let v = crate::support::wait(&f.op_b, j).await;
        assert_ne!(v["state"], "running", "{v}");
    }
}
