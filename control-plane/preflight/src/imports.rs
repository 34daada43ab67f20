//! The host functions: what Envoy would do, on in-memory state. Callouts are modelled in
//! `callout.rs`. Functions Envoy provides that the sandbox does not model (gRPC streams,
//! queues, foreign functions) answer `InternalFailure` and log that they were called.

use wasmi::{Caller, Linker, Module, Val, ValType};

use crate::abi::envoy_provides;
use crate::host::{
    HostState, LocalReply, Result, deserialize_pairs, give, read, read_string, serialize_pairs,
    status, write,
};

type C<'a> = Caller<'a, HostState>;

/// A linker with every host function the module imports.
pub(crate) fn linker(module: &Module) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(module.engine());
    // Stubs first, then the modelled functions over them.
    linker.allow_shadowing(true);
    stub_every_import(&mut linker, module)?;
    define_logging_and_time(&mut linker)?;
    define_buffers(&mut linker)?;
    define_headers(&mut linker)?;
    define_stream(&mut linker)?;
    crate::callout::define(&mut linker)?;
    define_state(&mut linker)?;
    define_metrics(&mut linker)?;
    define_wasi(&mut linker)?;
    Ok(linker)
}

fn define_logging_and_time(l: &mut Linker<HostState>) -> Result<()> {
    l.func_wrap(
        "env",
        "proxy_log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| {
            let message = read_string(&mut c, ptr, len)?;
            let level = ["trace", "debug", "info", "warn", "error", "critical"]
                .get(level as usize)
                .copied()
                .unwrap_or("?");
            c.data_mut().log(format!("[{level}] {message}"));
            Ok(status::OK)
        },
    )?;
    l.func_wrap("env", "proxy_get_log_level", |mut c: C<'_>, ret: i32| {
        write(&mut c, ret, &0i32.to_le_bytes())?;
        Ok(status::OK)
    })?;
    l.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: i32| {
            let now = c.data().now_ns();
            write(&mut c, ret, &now.to_le_bytes())?;
            Ok(status::OK)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, period: i32| {
            c.data_mut().tick_period_ms = period as u32;
            Ok(status::OK)
        },
    )?;
    Ok(())
}

fn define_buffers(l: &mut Linker<HostState>) -> Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, kind: i32, start: i32, max: i32, ret_ptr: i32, ret_len: i32| {
            let Some(buffer) = c.data_mut().buffer(kind).cloned() else {
                return Ok(status::NOT_FOUND);
            };
            let start = (start as u32 as usize).min(buffer.len());
            let end = start.saturating_add(max as u32 as usize).min(buffer.len());
            give(&mut c, &buffer[start..end], ret_ptr, ret_len)?;
            Ok(status::OK)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: C<'_>, kind: i32, start: i32, size: i32, ptr: i32, len: i32| {
            let bytes = read(&mut c, ptr, len)?;
            let Some(buffer) = c.data_mut().buffer(kind) else {
                return Ok(status::NOT_FOUND);
            };
            let start = (start as u32 as usize).min(buffer.len());
            let end = start.saturating_add(size as u32 as usize).min(buffer.len());
            buffer.splice(start..end, bytes);
            Ok(status::OK)
        },
    )?;
    Ok(())
}

fn define_headers(l: &mut Linker<HostState>) -> Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, map: i32, rp: i32, rl: i32| {
            let Some(pairs) = c.data_mut().map(map).cloned() else {
                return Ok(status::BAD_ARGUMENT);
            };
            give(&mut c, &serialize_pairs(&pairs), rp, rl)?;
            Ok(status::OK)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, map: i32, ptr: i32, len: i32| {
            let bytes = read(&mut c, ptr, len)?;
            let Some(pairs) = deserialize_pairs(&bytes) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let Some(target) = c.data_mut().map(map) else {
                return Ok(status::BAD_ARGUMENT);
            };
            *target = pairs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            Ok(status::OK)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: C<'_>, map: i32, kp: i32, kl: i32, rp: i32, rl: i32| {
            let key = read_string(&mut c, kp, kl)?.to_ascii_lowercase();
            let Some(pairs) = c.data_mut().map(map) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let Some(value) = pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
            else {
                return Ok(status::NOT_FOUND);
            };
            give(&mut c, value.as_bytes(), rp, rl)?;
            Ok(status::OK)
        },
    )?;
    for (name, replace) in [
        ("proxy_replace_header_map_value", true),
        ("proxy_add_header_map_value", false),
    ] {
        l.func_wrap(
            "env",
            name,
            move |mut c: C<'_>, map: i32, kp: i32, kl: i32, vp: i32, vl: i32| {
                let key = read_string(&mut c, kp, kl)?.to_ascii_lowercase();
                let value = read_string(&mut c, vp, vl)?;
                let Some(pairs) = c.data_mut().map(map) else {
                    return Ok(status::BAD_ARGUMENT);
                };
                if replace {
                    pairs.retain(|(k, _)| *k != key);
                }
                pairs.push((key, value));
                Ok(status::OK)
            },
        )?;
    }
    l.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: C<'_>, map: i32, kp: i32, kl: i32| {
            let key = read_string(&mut c, kp, kl)?.to_ascii_lowercase();
            let Some(pairs) = c.data_mut().map(map) else {
                return Ok(status::BAD_ARGUMENT);
            };
            pairs.retain(|(k, _)| *k != key);
            Ok(status::OK)
        },
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn send_local_response(
    mut c: C<'_>,
    code: i32,
    _dp: i32,
    _dl: i32,
    bp: i32,
    bl: i32,
    hp: i32,
    hl: i32,
    _grpc: i32,
) -> Result<i32> {
    let body = read(&mut c, bp, bl)?;
    let headers = deserialize_pairs(&read(&mut c, hp, hl)?).unwrap_or_default();
    let status_code = u16::try_from(code).unwrap_or(500);
    c.data_mut().local_reply = Some(LocalReply {
        status: status_code,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        body,
    });
    Ok(status::OK)
}

fn define_stream(l: &mut Linker<HostState>) -> Result<()> {
    l.func_wrap("env", "proxy_send_local_response", send_local_response)?;
    l.func_wrap("env", "proxy_continue_stream", |mut c: C<'_>, _: i32| {
        c.data_mut().resumed = true;
        Ok(status::OK)
    })?;
    for name in ["proxy_continue_request", "proxy_continue_response"] {
        l.func_wrap("env", name, |mut c: C<'_>| {
            c.data_mut().resumed = true;
            Ok(status::OK)
        })?;
    }
    l.func_wrap("env", "proxy_close_stream", |_: C<'_>, _: i32| {
        Ok(status::OK)
    })?;
    l.func_wrap("env", "proxy_set_effective_context", |_: C<'_>, _: i32| {
        Ok(status::OK)
    })?;
    l.func_wrap("env", "proxy_done", |_: C<'_>| Ok(status::OK))?;
    Ok(())
}

fn define_state(l: &mut Linker<HostState>) -> Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: C<'_>, pp: i32, pl: i32, rp: i32, rl: i32| {
            let path = read(&mut c, pp, pl)?;
            let value = property(c.data(), &path);
            match value {
                Some(value) => {
                    give(&mut c, &value, rp, rl)?;
                    Ok(status::OK)
                }
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: C<'_>, pp: i32, pl: i32, vp: i32, vl: i32| {
            let path = read(&mut c, pp, pl)?;
            let value = read(&mut c, vp, vl)?;
            c.data_mut().properties.insert(path, value);
            Ok(status::OK)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, rp: i32, rl: i32, rcas: i32| {
            let key = read(&mut c, kp, kl)?;
            let Some((value, cas)) = c.data().shared_data.get(&key).cloned() else {
                return Ok(status::NOT_FOUND);
            };
            give(&mut c, &value, rp, rl)?;
            write(&mut c, rcas, &cas.to_le_bytes())?;
            Ok(status::OK)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| {
            let key = read(&mut c, kp, kl)?;
            let value = read(&mut c, vp, vl)?;
            let entry = c
                .data_mut()
                .shared_data
                .entry(key)
                .or_insert((Vec::new(), 0));
            if cas != 0 && cas as u32 != entry.1 {
                return Ok(status::CAS_MISMATCH);
            }
            *entry = (value, entry.1.wrapping_add(1).max(1));
            Ok(status::OK)
        },
    )?;
    Ok(())
}

/// The properties the sandbox knows, by NUL-separated path.
fn property(state: &HostState, path: &[u8]) -> Option<Vec<u8>> {
    if let Some(value) = state.fixture_properties.get(path) {
        return Some(value.clone());
    }
    if let Some(value) = state.properties.get(path) {
        return Some(value.clone());
    }
    let header = |name: &str| {
        state
            .request_headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone().into_bytes())
    };
    match path {
        b"plugin_name" => Some(state.plugin_name.clone().into_bytes()),
        b"plugin_root_id" => Some(state.root_id.clone().into_bytes()),
        b"request\0path" => header(":path"),
        b"request\0method" => header(":method"),
        b"request\0host" => header(":authority"),
        b"request\0scheme" => header(":scheme"),
        b"node\0id" => Some(b"meshplug-preflight".to_vec()),
        _ => None,
    }
}

fn define_metrics(l: &mut Linker<HostState>) -> Result<()> {
    l.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: C<'_>, _kind: i32, np: i32, nl: i32, ret: i32| {
            let name = read_string(&mut c, np, nl)?;
            let metrics = &mut c.data_mut().metrics;
            metrics.push((name, 0));
            let id = (metrics.len() - 1) as u32;
            write(&mut c, ret, &id.to_le_bytes())?;
            Ok(status::OK)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: C<'_>, id: i32, by: i64| match c.data_mut().metrics.get_mut(id as u32 as usize) {
            Some((_, value)) => {
                *value = value.saturating_add(by);
                Ok(status::OK)
            }
            None => Ok(status::NOT_FOUND),
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_record_metric",
        |mut c: C<'_>, id: i32, to: i64| match c.data_mut().metrics.get_mut(id as u32 as usize) {
            Some((_, value)) => {
                *value = to;
                Ok(status::OK)
            }
            None => Ok(status::NOT_FOUND),
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, ret: i32| {
            let Some(value) = c.data().metrics.get(id as u32 as usize).map(|(_, v)| *v) else {
                return Ok(status::NOT_FOUND);
            };
            write(&mut c, ret, &value.to_le_bytes())?;
            Ok(status::OK)
        },
    )?;
    Ok(())
}

fn define_wasi(l: &mut Linker<HostState>) -> Result<()> {
    for module in ["wasi_snapshot_preview1", "wasi_unstable"] {
        l.func_wrap(
            module,
            "fd_write",
            |mut c: C<'_>, fd: i32, iovs: i32, n: i32, ret: i32| {
                let mut text = Vec::new();
                for i in 0..n {
                    let iov = read(&mut c, iovs + i * 8, 8)?;
                    let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                    let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                    text.extend(read(&mut c, ptr, len)?);
                }
                let written = text.len() as u32;
                let stream = if fd == 2 { "stderr" } else { "stdout" };
                c.data_mut().log(format!(
                    "[{stream}] {}",
                    String::from_utf8_lossy(&text).trim_end()
                ));
                write(&mut c, ret, &written.to_le_bytes())?;
                Ok(0)
            },
        )?;
        l.func_wrap(module, "proc_exit", |_: C<'_>, code: i32| -> Result<()> {
            Err(wasmi::Error::new(format!("proc_exit({code})")))
        })?;
        l.func_wrap(module, "random_get", |mut c: C<'_>, ptr: i32, len: i32| {
            let bytes: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(151)).collect();
            write(&mut c, ptr, &bytes)?;
            Ok(0)
        })?;
        for sizes in ["environ_sizes_get", "args_sizes_get"] {
            l.func_wrap(module, sizes, |mut c: C<'_>, count: i32, size: i32| {
                write(&mut c, count, &0u32.to_le_bytes())?;
                write(&mut c, size, &0u32.to_le_bytes())?;
                Ok(0)
            })?;
        }
        l.func_wrap(
            module,
            "clock_time_get",
            |mut c: C<'_>, _id: i32, _prec: i64, ret: i32| {
                let now = c.data().now_ns();
                write(&mut c, ret, &now.to_le_bytes())?;
                Ok(0)
            },
        )?;
    }
    Ok(())
}

/// Defines every import Envoy provides as a logged failure, with the module's own signature;
/// the functions the sandbox models are defined over these. Imports Envoy does not provide
/// were refused before this.
fn stub_every_import(l: &mut Linker<HostState>, module: &Module) -> Result<()> {
    for import in module.imports() {
        let (m, name) = (import.module(), import.name());
        let Some(ty) = import.ty().func().cloned() else {
            continue;
        };
        if !envoy_provides(m, name) {
            continue;
        }
        let label = format!("{m}.{name}");
        let failure = if m == "env" {
            status::INTERNAL_FAILURE
        } else {
            52
        };
        let result_types: Vec<ValType> = ty.results().to_vec();
        l.func_new(m, name, ty, move |mut c, _params, results| {
            c.data_mut()
                .log(format!("[sandbox] {label} is not available in pre-flight"));
            for (slot, ty) in results.iter_mut().zip(&result_types) {
                *slot = match ty {
                    ValType::I64 => Val::I64(i64::from(failure)),
                    _ => Val::I32(failure),
                };
            }
            Ok(())
        })?;
    }
    Ok(())
}
