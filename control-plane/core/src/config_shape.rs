//! One rule for a filter's configuration, wherever it comes from. A `.json` file must be valid
//! JSON; any other file (`<name>.config` in the artifacts folder, any extension given to
//! `meshplug validate --config`) is taken as it is: plain text, YAML, anything. Either way the
//! filter gets the bytes as written, never re-encoded. They must be UTF-8: the ECDS resource
//! (and a dynamic module's `filter_config`) carries them as a protobuf string.

use std::path::Path;

/// How a configuration file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigShape {
    /// `<name>.json`: valid JSON, delivered byte for byte.
    Json,
    /// `<name>.config` (or any other extension): delivered byte for byte.
    Text,
}

impl ConfigShape {
    /// The shape a file's extension says.
    pub fn of_file(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Self::Json,
            _ => Self::Text,
        }
    }

    /// The file of filter `name` in this shape, in the artifacts folder.
    pub fn file_name(self, name: &str) -> String {
        match self {
            Self::Json => format!("{name}.json"),
            Self::Text => format!("{name}.config"),
        }
    }

    /// The other shape (a filter has at most one configuration file).
    pub fn other(self) -> Self {
        match self {
            Self::Json => Self::Text,
            Self::Text => Self::Json,
        }
    }

    /// The configuration `bytes` hold, exactly as written; or why they are refused.
    pub fn read(self, bytes: &[u8]) -> Result<String, String> {
        let text = std::str::from_utf8(bytes).map_err(|err| {
            format!(
                "configuration is not UTF-8 text ({err}): it reaches the filter as a protobuf \
                 string"
            )
        })?;
        if self == Self::Json
            // Parsed into a value for its nesting limit (128): a configuration nested deeper
            // is refused here, before any filter's parser meets it.
            && let Err(err) = serde_json::from_str::<serde_json::Value>(text)
        {
            return Err(format!(
                "configuration is not valid JSON: {err} (name it `.config` to hand the filter \
                 plain text)"
            ));
        }
        Ok(text.to_string())
    }
}

#[cfg(test)]
mod tests;
