//! Signatures beside a build: `<file>.minisig` and `<file>.<label>.minisig` (one per signer,
//! for a threshold), read with the folder's checks. Which keys must have signed is a policy:
//! a plugin's `spec.signers`, else `--trusted-key` (any one). A build no policy accepts is
//! refused before it is stored; the refusal is not remembered under its sha, so a signature
//! that arrives later is checked then.

use std::path::{Path, PathBuf};

use meshplug_core::signature::SignerPolicy;

use super::read::{ReadOutcome, read_checked};
use super::{Ingest, SIGNATURE_MAX_BYTES};
use crate::manifest::PluginSpec;

/// What a build was signed with, as far as a policy is concerned.
#[derive(Debug, Default)]
pub(crate) struct Signed {
    /// The ids of the policy's keys that signed it (empty without a policy).
    pub signers: Vec<String>,
    /// The signature texts beside it.
    pub signatures: Vec<String>,
}

impl Ingest {
    /// `--trusted-key`, as a policy; `None` when no key is trusted.
    pub(crate) fn global_policy(&self) -> Option<SignerPolicy> {
        (!self.trusted_keys.is_empty())
            .then(|| SignerPolicy::any_of(self.trusted_keys.as_ref().clone()))
    }

    /// The policy of a plugin declared by `spec`: its `spec.signers` (checked when the
    /// manifest was read), else the global one.
    pub(crate) fn policy_for(&self, spec: &PluginSpec) -> Option<SignerPolicy> {
        match &spec.signers {
            Some(signers) => signers.policy().ok(),
            None => self.global_policy(),
        }
    }

    /// The build at `path` checked against `policy`: its signers and signatures, or why it
    /// is refused. Without a policy nothing is read or refused.
    pub(crate) fn check_signature(
        &self,
        path: &Path,
        sha: &str,
        bytes: &[u8],
        policy: Option<&SignerPolicy>,
    ) -> Result<Signed, String> {
        let Some(policy) = policy else {
            return Ok(Signed::default());
        };
        let signatures = self.read_signatures(path)?;
        let signers = policy.verify(bytes, &signatures)?;
        tracing::info!(path = %path.display(), %sha, signers = ?signers, "signatures verified");
        Ok(Signed {
            signers,
            signatures,
        })
    }

    /// The texts of `<file>.minisig` and every `<file>.<label>.minisig` beside `path`.
    pub(crate) fn read_signatures(&self, path: &Path) -> Result<Vec<String>, String> {
        let mut texts = Vec::new();
        for sig_path in signature_paths(path)? {
            let name = sig_path.file_name().unwrap_or_default().to_string_lossy();
            match read_checked(&sig_path, &self.folder, SIGNATURE_MAX_BYTES) {
                Ok(ReadOutcome::Bytes(bytes)) => {
                    texts.push(String::from_utf8_lossy(&bytes).into_owned());
                }
                Ok(ReadOutcome::Refused(reason)) => return Err(format!("{name}: {reason}")),
                Ok(ReadOutcome::NotSettled) => {
                    return Err(format!(
                        "{name} still changing; looked at again when it lands"
                    ));
                }
                Err(err) => return Err(format!("{name}: {err}")),
            }
        }
        Ok(texts)
    }
}

/// The signature files beside the build at `path`, in name order.
pub fn signature_paths(path: &Path) -> Result<Vec<PathBuf>, String> {
    let file = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let entries = std::fs::read_dir(dir).map_err(|e| format!("listing {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| is_signature_of(name, &file))
        .map(|name| dir.join(name))
        .collect();
    paths.sort();
    Ok(paths)
}

/// `<file>.minisig`, or `<file>.<label>.minisig` with a label of letters, digits, `-`, `_`.
fn is_signature_of(name: &str, file: &str) -> bool {
    let Some(rest) = name.strip_prefix(file) else {
        return false;
    };
    match rest.strip_suffix(".minisig") {
        Some("") => true,
        Some(label) => label.strip_prefix('.').is_some_and(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_signature_of;

    #[test]
    fn signature_files_are_the_builds_own() {
        assert!(is_signature_of("authz.wasm.minisig", "authz.wasm"));
        assert!(is_signature_of("authz.wasm.team-a.minisig", "authz.wasm"));
        assert!(!is_signature_of("authz.wasm.minisig.tmp", "authz.wasm"));
        assert!(!is_signature_of("authz.wasm..minisig", "authz.wasm"));
        assert!(!is_signature_of("authz.wasm.a.b.minisig", "authz.wasm"));
        assert!(!is_signature_of("authz-b.wasm.minisig", "authz.wasm"));
    }
}
