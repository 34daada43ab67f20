//! Callouts in the sandbox: `proxy_http_call` and `proxy_grpc_call` are recorded with a
//! token, as Envoy would dispatch them, and answered later from the fixture
//! ([`crate::fixture::CalloutResponse`]) through the filter's own callbacks.

use wasmi::{Caller, Linker};

use crate::host::{HostState, Pairs, Result, deserialize_pairs, read, read_string, status, write};

type C<'a> = Caller<'a, HostState>;

/// How a callout was made, so it is answered through the matching callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// `proxy_http_call`: answered by `proxy_on_http_call_response`.
    Http,
    /// `proxy_grpc_call`: answered by `proxy_on_grpc_receive` and `proxy_on_grpc_close`.
    Grpc,
}

/// One callout the filter made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    /// The token the filter got for it.
    pub(crate) token: u32,
    /// Which one it is in this request, from 0: the fixture's answer of that index answers it.
    pub(crate) index: usize,
    /// HTTP or gRPC.
    pub(crate) kind: CallKind,
    /// The cluster it went to (for gRPC, the service's cluster name as given).
    pub(crate) cluster: String,
}

/// The answer being handed to the filter, read through the callout maps and buffers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) headers: Pairs,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: Pairs,
}

impl HostState {
    /// Records a callout; returns its token.
    fn record_call(&mut self, kind: CallKind, cluster: String) -> u32 {
        let index = self.calls_made;
        self.calls_made += 1;
        let token = u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1);
        self.log(format!("[sandbox] callout {index} to `{cluster}`"));
        self.calls.push_back(Call {
            token,
            index,
            kind,
            cluster,
        });
        token
    }
}

/// The most callouts one request may make before they fail (a filter calling in a loop).
const MAX_CALLS: usize = 64;

/// Defines `proxy_http_call`, `proxy_grpc_call` and `proxy_get_status`.
pub(crate) fn define(l: &mut Linker<HostState>) -> Result<()> {
    // The status of the gRPC call being answered (no message: fixtures give none).
    l.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: C<'_>, code_ptr: i32, message_ptr: i32, message_len: i32| {
            let code = c.data().grpc_status;
            write(&mut c, code_ptr, &code.to_le_bytes())?;
            write(&mut c, message_ptr, &0u32.to_le_bytes())?;
            write(&mut c, message_len, &0u32.to_le_bytes())?;
            Ok(status::OK)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_http_call",
        #[allow(clippy::too_many_arguments)]
        |mut c: C<'_>,
         cluster_ptr: i32,
         cluster_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         _body_ptr: i32,
         _body_len: i32,
         _trailers_ptr: i32,
         _trailers_len: i32,
         _timeout_ms: i32,
         token_ptr: i32| {
            let cluster = read_string(&mut c, cluster_ptr, cluster_len)?;
            let headers = read(&mut c, headers_ptr, headers_len)?;
            if !headers.is_empty() && deserialize_pairs(&headers).is_none() {
                return Ok(status::BAD_ARGUMENT);
            }
            dispatch(&mut c, CallKind::Http, cluster, token_ptr)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_call",
        #[allow(clippy::too_many_arguments)]
        |mut c: C<'_>,
         service_ptr: i32,
         service_len: i32,
         _service_name_ptr: i32,
         _service_name_len: i32,
         _method_ptr: i32,
         _method_len: i32,
         _metadata_ptr: i32,
         _metadata_len: i32,
         _message_ptr: i32,
         _message_len: i32,
         _timeout_ms: i32,
         token_ptr: i32| {
            let service = read_string(&mut c, service_ptr, service_len)?;
            dispatch(&mut c, CallKind::Grpc, service, token_ptr)
        },
    )?;
    Ok(())
}

fn dispatch(c: &mut C<'_>, kind: CallKind, cluster: String, token_ptr: i32) -> Result<i32> {
    if c.data().calls_made >= MAX_CALLS {
        c.data_mut().log(format!(
            "[sandbox] more than {MAX_CALLS} callouts in one request"
        ));
        return Ok(status::INTERNAL_FAILURE);
    }
    let token = c.data_mut().record_call(kind, cluster);
    write(c, token_ptr, &token.to_le_bytes())?;
    Ok(status::OK)
}
