//! Appends notes to a ledger from several threads until killed, printing
//! `acked <seq> <text>` for each append once it is durable.
//! Usage: ledger-stress LEDGER_DIR KEY_FILE THREADS

use inland_runtime::{Event, EventLedger as Ledger};
use std::io::Write;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, key, threads] = args.as_slice() else {
        return Err("usage: ledger-stress LEDGER_DIR KEY_FILE THREADS".into());
    };
    let ledger = Arc::new(Ledger::open(dir.as_ref(), key.as_ref())?);
    let threads: usize = threads.parse()?;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || -> Result<(), String> {
                for i in 0.. {
                    let text = format!("t{t}-{i}");
                    let seq = ledger
                        .append(Event::Note { text: text.clone() })
                        .map_err(|e| e.to_string())?;
                    if i % 50 == 0 {
                        ledger.checkpoint().map_err(|e| e.to_string())?;
                    }
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "acked {seq} {text}")
                        .and_then(|_| out.flush())
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "thread panicked")??;
    }
    Ok(())
}
