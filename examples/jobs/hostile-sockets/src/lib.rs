//! Hostile: tries to open a network connection to send data out.

use inland_guest::{Error, Params, job};
use std::io::Write;

fn run(_params: Params) -> Result<(), Error> {
    let mut conn = std::net::TcpStream::connect("127.0.0.1:9").map_err(|e| e.to_string())?;
    conn.write_all(b"exfiltrated").map_err(|e| e.to_string())?;
    Ok(())
}

job!(run);
