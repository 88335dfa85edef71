//! Hostile: tries to read host files and smuggle them into an output.

use inland_guest::{Error, Params, job};

fn run(_params: Params) -> Result<(), Error> {
    let secret = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    let listing = std::fs::read_dir("/").map_err(|e| e.to_string())?.count();
    Err(Error::Job(format!("read {} bytes and {listing} entries", secret.len())))
}

job!(run);
