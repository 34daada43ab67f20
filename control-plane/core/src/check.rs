//! Checks an artifact must pass before any proxy is sent it. Pure.
//!
//! These are structural: size, file format; for Wasm that every section fits in the file, which
//! is what catches a truncated or half-written build; for a dynamic module that it is an ELF
//! shared object for this architecture exporting every hook Envoy requires (`check/elf.rs`). Validating
//! Wasm code and running it with its configuration is the pre-flight's job (see ARCHITECTURE.md).

mod elf;

pub use elf::{ENVOY_VERSION_SYMBOL, REQUIRED_HOOKS};

use crate::artifact::ArtifactKind;

/// Limits the checks enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest artifact accepted, in bytes.
    pub max_artifact_bytes: u64,
    /// Largest filter configuration (and fixtures or schema file) accepted, in bytes. Every
    /// proxy holds each configuration, and so does the saved rollout state.
    pub max_config_bytes: u64,
}

/// The default largest configuration: 1 MiB.
pub const DEFAULT_MAX_CONFIG_BYTES: u64 = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_artifact_bytes: 32 * 1024 * 1024,
            max_config_bytes: DEFAULT_MAX_CONFIG_BYTES,
        }
    }
}

impl Limits {
    /// A configuration over the limit, as a refusal message.
    pub fn check_config(&self, size: usize) -> Result<(), String> {
        let size = size as u64;
        if size > self.max_config_bytes {
            return Err(format!(
                "configuration is {size} bytes, over the limit of {} bytes (--max-config-bytes)",
                self.max_config_bytes
            ));
        }
        Ok(())
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
    /// A section runs past the end of the file: a truncated or half-written build.
    #[error(
        "truncated Wasm: section {section} at offset {offset} needs {needed} bytes, {left} left"
    )]
    Truncated {
        /// Section id.
        section: u8,
        /// Offset of the section header.
        offset: usize,
        /// Bytes the section declares.
        needed: u64,
        /// Bytes left in the file.
        left: usize,
    },
    /// A dynamic module for another machine.
    #[error("dynamic module built for {found}, this machine is {expected}")]
    WrongArchitecture {
        /// The module's architecture.
        found: String,
        /// This machine's.
        expected: String,
    },
    /// A dynamic module without hooks Envoy requires.
    #[error("dynamic module does not export {}: {}", missing.len(), missing.join(", "))]
    MissingHooks {
        /// The hooks it lacks.
        missing: Vec<String>,
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

/// What the checks learned about an artifact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactFacts {
    /// For a dynamic module built with meshplug's SDK: the Envoy version it was built for.
    pub envoy_version: Option<String>,
}

/// Checks `bytes` as an artifact of `kind`.
pub fn check_artifact(
    kind: ArtifactKind,
    bytes: &[u8],
    limits: Limits,
) -> Result<ArtifactFacts, Rejection> {
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
        ArtifactKind::Wasm => check_wasm_header(bytes).map(|()| ArtifactFacts::default()),
        ArtifactKind::Native => {
            elf::check_native(bytes).map(|envoy_version| ArtifactFacts { envoy_version })
        }
        // A built-in filter has no file; none is ever checked as one.
        ArtifactKind::Builtin => Err(Rejection::WrongFormat {
            expected: "a build",
            detail: "a built-in Envoy filter has no file".into(),
        }),
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
        return Err(wrong(format!(
            "unsupported binary version {:?}",
            &bytes[4..8]
        )));
    }
    check_wasm_sections(bytes)
}

/// The highest section id defined by the Wasm core spec (with the tag section).
const LAST_SECTION_ID: u8 = 13;

/// Walks the section headers: each is an id byte and a LEB128 size that must fit the file.
fn check_wasm_sections(bytes: &[u8]) -> Result<(), Rejection> {
    let mut offset = 8;
    while offset < bytes.len() {
        let section = bytes[offset];
        if section > LAST_SECTION_ID {
            return Err(Rejection::WrongFormat {
                expected: "WebAssembly",
                detail: format!("unknown section id {section} at offset {offset}"),
            });
        }
        let (needed, header_len) =
            read_leb128_u32(&bytes[offset + 1..]).ok_or(Rejection::Truncated {
                section,
                offset,
                needed: 0,
                left: bytes.len() - offset - 1,
            })?;
        let body = offset + 1 + header_len;
        let left = bytes.len() - body;
        if needed > left as u64 {
            return Err(Rejection::Truncated {
                section,
                offset,
                needed,
                left,
            });
        }
        offset = body + needed as usize;
    }
    Ok(())
}

/// Decodes an unsigned LEB128 of at most 5 bytes; returns it and its length.
fn read_leb128_u32(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().take(5).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests;
