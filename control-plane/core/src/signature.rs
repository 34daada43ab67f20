//! Detached minisign signatures over builds: a build `<file>` may carry `<file>.minisig`
//! beside it, and more as `<file>.<label>.minisig` (one per signer, for a threshold). With trusted keys configured, a build is accepted only if its signature verifies
//! with one of them; the signer's key id (as minisign prints it) goes into the decision log.
//! Pure: the caller reads the files. Verification is `minisign-verify`'s.

use base64::Engine as _;
use minisign_verify::{PublicKey, Signature};

/// A public key builds may be signed with.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The key id, as `minisign` prints it (upper-case hex, no leading zeros).
    pub id: String,
    key: PublicKey,
}

impl TrustedKey {
    /// A key from a minisign public-key file's text (or its base64 line alone).
    pub fn parse(text: &str) -> Result<Self, String> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .ok_or("no public key in it")?;
        let key =
            PublicKey::from_base64(line).map_err(|e| format!("not a minisign public key: {e}"))?;
        let id = key_id(line, 2).ok_or("not a minisign public key")?;
        Ok(Self { id, key })
    }
}

/// The key id in a base64 key or signature line: the 8 bytes after the 2-byte algorithm,
/// printed as minisign prints it (little-endian, upper-case hex, no leading zeros: `%llX`).
fn key_id(base64_line: &str, at: usize) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_line.trim())
        .ok()?;
    let id: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(format!("{:X}", u64::from_le_bytes(id)))
}

/// Which keys must sign a build, and how many of them: a plugin's `spec.signers`, or
/// `--trusted-key` (any one of them).
#[derive(Debug, Clone)]
pub struct SignerPolicy {
    /// The keys whose signatures count.
    pub keys: Vec<TrustedKey>,
    /// How many distinct keys of them must have signed (1 ≤ threshold ≤ keys).
    pub threshold: usize,
}

impl SignerPolicy {
    /// Any one of `keys`.
    pub fn any_of(keys: Vec<TrustedKey>) -> Self {
        Self { keys, threshold: 1 }
    }

    /// Checks every signature over `bytes` (the texts of `<file>.minisig` and
    /// `<file>.<label>.minisig`). The ids of the policy's keys that signed it, in key order,
    /// or why the build is refused.
    pub fn verify(&self, bytes: &[u8], signatures: &[String]) -> Result<Vec<String>, String> {
        if signatures.is_empty() {
            return Err(
                "unsigned: signatures are required and there is no <file>.minisig beside it".into(),
            );
        }
        let mut valid = Vec::new();
        let mut problems = Vec::new();
        for text in signatures {
            match verify_one(bytes, text, &self.keys) {
                Ok(id) if !valid.contains(&id) => valid.push(id),
                Ok(_) => {}
                Err(problem) => problems.push(problem),
            }
        }
        if valid.len() >= self.threshold {
            valid.sort_by_key(|id| self.keys.iter().position(|k| &k.id == id));
            return Ok(valid);
        }
        if self.threshold == 1 {
            return Err(problems.join("; "));
        }
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        let mut reason = format!(
            "{} of the {} required signatures (by any of {}): valid from {}",
            valid.len(),
            self.threshold,
            ids.join(", "),
            if valid.is_empty() {
                "none".to_string()
            } else {
                valid.join(", ")
            }
        );
        if !problems.is_empty() {
            reason.push_str(&format!("; {}", problems.join("; ")));
        }
        Err(reason)
    }
}

/// Checks `signature` (the text of `<file>.minisig`, `None` when there is none) over `bytes`
/// against `trusted`: any one of them. The signer's key id, or why the build is refused.
pub fn verify(
    bytes: &[u8],
    signature: Option<&str>,
    trusted: &[TrustedKey],
) -> Result<String, String> {
    let signatures: Vec<String> = signature.into_iter().map(str::to_owned).collect();
    let mut signers = SignerPolicy::any_of(trusted.to_vec()).verify(bytes, &signatures)?;
    Ok(signers.remove(0))
}

/// One signature over `bytes`: the id of the key in `trusted` that made it, or why not.
fn verify_one(bytes: &[u8], text: &str, trusted: &[TrustedKey]) -> Result<String, String> {
    let parsed = Signature::decode(text)
        .map_err(|e| format!("the .minisig is not a minisign signature: {e}"))?;
    let signer = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains("comment:"))
        .and_then(|line| key_id(line, 2))
        .unwrap_or_else(|| "?".into());
    let Some(key) = trusted.iter().find(|k| k.id == signer) else {
        let ids: Vec<&str> = trusted.iter().map(|k| k.id.as_str()).collect();
        return Err(format!(
            "signed by key {signer}, which is not trusted (trusted: {})",
            ids.join(", ")
        ));
    };
    key.key.verify(bytes, &parsed, false).map_err(|e| {
        format!("the signature by key {signer} does not match these bytes (tampered, or signed another file): {e}")
    })?;
    Ok(signer)
}

#[cfg(test)]
mod tests;
