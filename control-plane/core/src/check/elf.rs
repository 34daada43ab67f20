//! The structural check of an Envoy dynamic module (`.so`): an ELF shared object for this
//! machine's architecture that exports every hook Envoy 1.40 resolves when it loads a module.
//! Pure: it reads the bytes, it never loads them.

use object::{Architecture, Object, ObjectKind, ObjectSection, ObjectSymbol};

use super::Rejection;

/// `envoy_dynamic_module_on_program_init` and the 20 HTTP filter hooks Envoy 1.40 requires;
/// a module missing any of them is refused by Envoy with a NACK naming only the first.
pub const REQUIRED_HOOKS: [&str; 21] = [
    "envoy_dynamic_module_on_program_init",
    "envoy_dynamic_module_on_http_filter_config_new",
    "envoy_dynamic_module_on_http_filter_config_destroy",
    "envoy_dynamic_module_on_http_filter_new",
    "envoy_dynamic_module_on_http_filter_destroy",
    "envoy_dynamic_module_on_http_filter_request_headers",
    "envoy_dynamic_module_on_http_filter_request_body",
    "envoy_dynamic_module_on_http_filter_request_trailers",
    "envoy_dynamic_module_on_http_filter_response_headers",
    "envoy_dynamic_module_on_http_filter_response_body",
    "envoy_dynamic_module_on_http_filter_response_trailers",
    "envoy_dynamic_module_on_http_filter_stream_complete",
    "envoy_dynamic_module_on_http_filter_http_callout_done",
    "envoy_dynamic_module_on_http_filter_http_stream_headers",
    "envoy_dynamic_module_on_http_filter_http_stream_data",
    "envoy_dynamic_module_on_http_filter_http_stream_trailers",
    "envoy_dynamic_module_on_http_filter_http_stream_complete",
    "envoy_dynamic_module_on_http_filter_http_stream_reset",
    "envoy_dynamic_module_on_http_filter_scheduled",
    "envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark",
    "envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark",
];

/// The symbol meshplug's SDK exports with the Envoy version a module was built for.
pub const ENVOY_VERSION_SYMBOL: &str = "meshplug_envoy_version";

/// The architecture of the machine the control plane (and so its proxies) runs on.
fn host_architecture() -> Architecture {
    if cfg!(target_arch = "x86_64") {
        Architecture::X86_64
    } else if cfg!(target_arch = "aarch64") {
        Architecture::Aarch64
    } else {
        Architecture::Unknown
    }
}

fn wrong(detail: impl Into<String>) -> Rejection {
    Rejection::WrongFormat {
        expected: "ELF shared object",
        detail: detail.into(),
    }
}

/// Checks a dynamic module; on success, the Envoy version it declares (if built with our SDK).
pub fn check_native(bytes: &[u8]) -> Result<Option<String>, Rejection> {
    if !bytes.starts_with(b"\x7fELF") {
        return Err(wrong("no ELF magic number"));
    }
    let file = object::File::parse(bytes).map_err(|err| wrong(format!("unreadable ELF: {err}")))?;
    if file.kind() != ObjectKind::Dynamic {
        return Err(wrong(format!(
            "a {:?} object, not a shared object",
            file.kind()
        )));
    }
    let expected = host_architecture();
    if file.architecture() != expected {
        return Err(Rejection::WrongArchitecture {
            found: format!("{:?}", file.architecture()),
            expected: format!("{expected:?}"),
        });
    }
    let exported: std::collections::BTreeSet<&str> = file
        .dynamic_symbols()
        .filter(|s| s.is_definition())
        .filter_map(|s| s.name().ok())
        .collect();
    let missing: Vec<String> = REQUIRED_HOOKS
        .iter()
        .filter(|hook| !exported.contains(*hook))
        .map(|hook| (*hook).to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Rejection::MissingHooks { missing });
    }
    envoy_version(&file)
}

/// Reads the NUL-padded version string behind [`ENVOY_VERSION_SYMBOL`], if the module has it.
fn envoy_version(file: &object::File<'_>) -> Result<Option<String>, Rejection> {
    let Some(symbol) = file
        .dynamic_symbols()
        .find(|s| s.name().is_ok_and(|n| n == ENVOY_VERSION_SYMBOL))
    else {
        return Ok(None);
    };
    let unreadable = || wrong(format!("{ENVOY_VERSION_SYMBOL} is not readable"));
    let section = symbol
        .section_index()
        .and_then(|index| file.section_by_index(index).ok())
        .ok_or_else(unreadable)?;
    let data = section
        .data_range(symbol.address(), symbol.size().max(1))
        .ok()
        .flatten()
        .ok_or_else(unreadable)?;
    let text: String = data
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| char::from(*b))
        .collect();
    let plausible = !text.is_empty()
        && text.split('.').count() == 3
        && text
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if plausible {
        Ok(Some(text))
    } else {
        Err(wrong(format!(
            "{ENVOY_VERSION_SYMBOL} is {text:?}, not a version"
        )))
    }
}
