//! Checks an artifact must pass before any proxy is sent it. Pure.
//!
//! Today these are structural: size and file format. Running the module in a sandbox with its
//! configuration is the pre-flight's job (see ARCHITECTURE.md).

use crate::artifact::ArtifactKind;

/// Limits the checks enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest artifact accepted, in bytes.
    pub max_artifact_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_artifact_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Why an artifact was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Zero bytes.
    #[error("empty file")]
    Empty,
    /// Over the configured limit.
    #[error("artifact is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Not the file format its name claims.
    #[error("not a {expected} file: {detail}")]
    WrongFormat {
        /// The format expected.
        expected: &'static str,
        /// What was found.
        detail: String,
    },
}

const WASM_MAGIC: [u8; 4] = *b"\0asm";
const WASM_VERSION_1: [u8; 4] = [1, 0, 0, 0];

/// Checks `bytes` as an artifact of `kind`.
pub fn check_artifact(kind: ArtifactKind, bytes: &[u8], limits: Limits) -> Result<(), Rejection> {
    let size = bytes.len() as u64;
    if size == 0 {
        return Err(Rejection::Empty);
    }
    if size > limits.max_artifact_bytes {
        return Err(Rejection::TooLarge {
            size,
            limit: limits.max_artifact_bytes,
        });
    }
    match kind {
        ArtifactKind::Wasm => check_wasm_header(bytes),
    }
}

fn check_wasm_header(bytes: &[u8]) -> Result<(), Rejection> {
    let wrong = |detail: String| Rejection::WrongFormat {
        expected: "WebAssembly",
        detail,
    };
    if bytes.len() < 8 || bytes[..4] != WASM_MAGIC {
        return Err(wrong("no \\0asm magic number".into()));
    }
    if bytes[4..8] != WASM_VERSION_1 {
        return Err(wrong(format!("unsupported binary version {:?}", &bytes[4..8])));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
