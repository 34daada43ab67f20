//! The smoke request: without fixtures, one `GET /` (and a `200` upstream answer) through a
//! new HTTP context, so a module that fails every request is refused before any proxy runs
//! it. When it traps, a fresh VM tells why: a module whose context takes a new TCP connection
//! is a network filter; one that makes no child context at all is a background-only plugin.

use wasmi::Module;

use crate::Rejection;
use crate::fixture::Fixture;
use crate::run::{Preflight, VmInputs};
use crate::vm::{ROOT_CONTEXT, Vm};

/// The context id the smoke request runs in.
const SMOKE_CONTEXT: i32 = 2;

/// Runs the smoke request on `vm`; on a failure, asks a fresh VM what kind of module this is.
pub(crate) fn smoke(
    preflight: &Preflight,
    module: &Module,
    (name, inputs): (&str, &VmInputs),
    config: &[u8],
    vm: &mut Vm,
) -> Result<(), Rejection> {
    let fixture = Fixture::named("smoke request");
    let failure = match vm.request(SMOKE_CONTEXT, &fixture) {
        // No expectations: a mismatch can only be a pause nothing resumed here (a timer, a
        // queue), which Envoy may well resume.
        Ok(_) | Err(Rejection::FixtureMismatch { .. }) => return Ok(()),
        Err(failure) => failure,
    };
    let Rejection::Trap { phase, message, .. } = &failure else {
        return Err(failure);
    };
    let mut fresh = Vm::start(preflight, module, (name, inputs), config)?;
    let logs = vm.logs();
    if takes_a_connection(&mut fresh) {
        return Err(Rejection::NotAnHttpFilter {
            reason: format!(
                "a network (TCP) filter: its context takes a downstream connection, and {phase} \
                 trapped ({message}); it cannot run in an HTTP filter slot"
            ),
            logs,
        });
    }
    if phase == "proxy_on_context_create" {
        return Err(Rejection::NotAnHttpFilter {
            reason: format!(
                "no HTTP filter context: a background-only plugin (root context only); \
                 creating a request's context trapped ({message})"
            ),
            logs,
        });
    }
    Err(failure)
}

/// Whether the module makes a child context that takes a new downstream connection (a
/// network filter's first hook) without trapping.
fn takes_a_connection(vm: &mut Vm) -> bool {
    let created = vm.call("proxy_on_context_create", &[SMOKE_CONTEXT, ROOT_CONTEXT]);
    let exported = vm.exports("proxy_on_new_connection");
    created.is_ok() && exported && vm.call("proxy_on_new_connection", &[SMOKE_CONTEXT]).is_ok()
}
