//! Ingest of a built-in Envoy filter (`spec.envoyFilter`): no file arrives; its "build" is its
//! typed config, known by the sha256 of that text, and its check is Envoy's own
//! `--mode validate` ([`crate::builtin`]). A refusal by Envoy is remembered under the sha, so
//! the same text is not validated again; a missing Envoy binary is not remembered (it may be
//! installed before the next reload).

use std::path::PathBuf;

use super::Ingest;
use crate::Error;
use crate::artifact::ArtifactKind;
use crate::registry::PublishedArtifact;
use crate::store::sha256_hex;

/// The "build" of a built-in filter whose typed config is `typed_config_json`.
pub(super) fn artifact(typed_config_json: &str) -> PublishedArtifact {
    PublishedArtifact {
        kind: ArtifactKind::Builtin,
        sha256: sha256_hex(typed_config_json.as_bytes()),
        path: PathBuf::new(),
        envoy_version: None,
        signers: Vec::new(),
        signatures: Vec::new(),
    }
}

impl Ingest {
    /// Envoy's verdict on plugin `name`'s built-in filter: `None` when it may go out, else
    /// the reason.
    pub(super) fn check_builtin(
        &self,
        name: &str,
        artifact: &PublishedArtifact,
        typed_config_json: &str,
    ) -> Result<Option<String>, Error> {
        let Some(envoy) = crate::builtin::envoy_binary(self.envoy.as_deref()) else {
            return Ok(Some(
                "checking a built-in Envoy filter needs Envoy 1.40: give `meshplug serve \
                 --envoy PATH` (or MESHPLUG_ENVOY, or put `envoy` on PATH)"
                    .into(),
            ));
        };
        let started = std::time::Instant::now();
        match crate::builtin::validate(&envoy, name, typed_config_json) {
            Ok(Ok(())) => {
                let ms = started.elapsed().as_millis();
                tracing::info!(plugin = %name, sha256 = %artifact.sha256, ms, "built-in filter validated by Envoy");
                Ok(None)
            }
            Ok(Err(reason)) => {
                self.store.put_rejection(&artifact.sha256, &reason)?;
                Ok(Some(reason))
            }
            // Envoy could not run (not a verdict on the filter): not remembered.
            Err(err) => Ok(Some(err.to_string())),
        }
    }
}
