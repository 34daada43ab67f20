//! A configuration a manifest gives in one of two fields: a mapping (`config`,
//! `vmConfig.configuration`), handed over as JSON, or text (`configText`,
//! `vmConfig.configurationText`), handed over as written; never both. The one rule for both
//! places.

use super::spec::Problem;

/// One pair of configuration fields of a manifest.
pub(super) struct ConfigFields<'a> {
    /// The mapping, if given.
    pub(super) mapping: Option<&'a serde_json::Value>,
    /// The text, if given.
    pub(super) text: Option<&'a String>,
    /// Where the two keys sit (`spec`, `spec.vmConfig`).
    pub(super) at: &'a str,
    /// The mapping's key and the text's key (`config`, `configText`).
    pub(super) keys: (&'a str, &'a str),
    /// What gets the configuration (`filter`, `VM`), for the messages.
    pub(super) receiver: &'a str,
}

impl ConfigFields<'_> {
    /// The configuration given: the text as written, else the mapping as JSON.
    pub(super) fn value(&self) -> Option<String> {
        match (self.text, self.mapping) {
            (Some(text), _) => Some(text.clone()),
            (None, Some(mapping)) => Some(mapping.to_string()),
            (None, None) => None,
        }
    }

    /// Why the pair is refused: a mapping that is not one, or both given.
    pub(super) fn problem(&self) -> Option<Problem> {
        let (key, text_key) = self.keys;
        if self.mapping.is_some_and(|m| !m.is_object()) {
            let message = format!(
                "must be a mapping (it is handed to the {} as a JSON object); give text as \
                 `{text_key}`",
                self.receiver
            );
            return Some((format!("{}.{key}", self.at), format!("{key}:"), message));
        }
        if self.mapping.is_some() && self.text.is_some() {
            let message = format!("give `{key}` (a mapping) or `{text_key}` (text), not both");
            return Some((format!("{}.{text_key}", self.at), text_key.into(), message));
        }
        None
    }
}
