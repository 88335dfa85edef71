//! Hostile: looks for secrets in environment variables and program arguments,
//! and fails loudly if it finds any.

use inland_guest::{Error, Params, job, log};

fn run(_params: Params) -> Result<(), Error> {
    let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let args: Vec<String> = std::env::args().collect();
    log!("environment variables visible: {}; arguments visible: {}", vars.len(), args.len());
    if vars.is_empty() && args.is_empty() {
        Ok(())
    } else {
        Err(Error::Job(format!("leaked environment: {vars:?} {args:?}")))
    }
}

job!(run);
