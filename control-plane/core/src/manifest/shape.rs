//! What a manifest file must be before it is parsed: at most [`MAX_BYTES`] and nested at most
//! [`MAX_DEPTH`] levels. The YAML parser takes time that grows faster than the input with
//! nesting; a linear scan here keeps a hostile file from holding up a reload.

use super::ManifestError;

/// The largest manifest file read, in bytes.
pub const MAX_BYTES: usize = 1024 * 1024;
/// The deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 64;
/// Marks the text of a file that could not be read as a manifest; what follows is why.
pub const UNREADABLE: &str = "\u{0}meshplug-unreadable: ";

/// Refuses a file over the size or depth limit, or one [`UNREADABLE`] marks.
pub fn check_shape(file: &str, text: &str) -> Result<(), ManifestError> {
    let refuse = |line: Option<usize>, message: String| ManifestError {
        file: file.to_string(),
        line,
        column: None,
        field: String::new(),
        message,
    };
    if let Some(reason) = text.strip_prefix(UNREADABLE) {
        return Err(refuse(None, reason.to_string()));
    }
    if text.len() > MAX_BYTES {
        let message = format!(
            "the file is {} bytes, over the limit of {MAX_BYTES} bytes for a manifest",
            text.len()
        );
        return Err(refuse(None, message));
    }
    if let Some((line, depth)) = too_deep(text) {
        let message =
            format!("nested {depth} levels deep at this line; a manifest may nest {MAX_DEPTH}");
        return Err(refuse(Some(line), message));
    }
    Ok(())
}

/// The first line (1-based) where nesting passes [`MAX_DEPTH`], and the depth there. Block
/// nesting counts indentation levels and `- ` markers; flow nesting counts open `[` and `{`
/// outside quotes and comments.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if flow == 0 {
            let indent = line.len() - trimmed.len();
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
        }
        let dashes = trimmed
            .as_bytes()
            .chunks(2)
            .take_while(|pair| *pair == b"- " || *pair == b"-")
            .count();
        flow = flow_depth(trimmed, flow);
        let depth = indents.len() + dashes + flow;
        if depth > MAX_DEPTH {
            return Some((number + 1, depth));
        }
    }
    None
}

/// The flow depth after `line`, starting from `depth`: the deepest point inside the line counts
/// through the return value only when the line leaves it open, so a line that opens and closes
/// 100 levels is caught by [`deepest`] instead.
fn flow_depth(line: &str, depth: usize) -> usize {
    let (end, peak) = deepest(line, depth);
    if peak > MAX_DEPTH { peak } else { end }
}

/// Walks `line` from `depth`: (depth at its end, deepest point).
fn deepest(line: &str, mut depth: usize) -> (usize, usize) {
    let mut peak = depth;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') => break,
            (None, '[' | '{') => {
                depth += 1;
                peak = peak.max(depth);
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    (depth, peak)
}

#[cfg(test)]
mod tests;
