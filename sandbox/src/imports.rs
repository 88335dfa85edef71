//! The import allow-list: a job gets the `inland:job/host` interface and
//! the parts of WASI that Rust's std needs, nothing that reaches files or the
//! network. Checked at admission, before a job runs.

use crate::error::JobError;

/// The interfaces a job may import, by name without version.
const ALLOWED_IMPORTS: [&str; 19] = [
    "inland:job/host",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// The names a component imports at its top level, read from its bytes
/// without compiling anything: a component that asks for a denied
/// capability is refused before the seconds a large one takes to compile.
pub fn declared_imports(wasm: &[u8]) -> Result<Vec<String>, JobError> {
    use wasmparser::{Parser, Payload};
    let malformed = |e: wasmparser::BinaryReaderError| JobError::InvalidModule {
        message: format!("not a valid component: {}", e.message()),
    };
    let mut names = Vec::new();
    // Nested modules and components are satisfied inside the component;
    // only the outermost one's imports reach the host.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(malformed)? {
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    names.push(import.map_err(malformed)?.name.name.to_string());
                }
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(names)
}

/// Refuses imports outside the allow-list, naming the capability.
pub fn check_import(name: &str) -> Result<(), JobError> {
    let interface = name.split('@').next().unwrap_or(name);
    if ALLOWED_IMPORTS.contains(&interface) {
        return Ok(());
    }
    let why = if interface.starts_with("wasi:filesystem") {
        "jobs have no access to files (wasi:filesystem); read data with query()"
    } else if interface.starts_with("wasi:sockets") || interface.starts_with("wasi:http") {
        "jobs have no network access (wasi:sockets); outputs leave only through the release gate"
    } else {
        "it is not part of the inland:job world"
    };
    Err(JobError::CapabilityDenied {
        import: name.to_string(),
        why: why.to_string(),
    })
}
