//! The end-to-end harness for meshplug: real processes on loopback.
//!
//! It starts an in-process upstream, the `meshplug` binary and a real Envoy (the pinned
//! version from `envoy-config/.envoy-version`, installed by `make setup`), each on ephemeral
//! ports, and stops every process it started on drop, by PID. Nothing here mocks Envoy.
//!
//! One scenario per file lives in `tests/`; `src/bin/` holds `dev-mesh` (what `make run`
//! starts) and `bench-swap` (what `make bench` runs).

pub mod bench_args;
pub mod browser;
pub mod compat;
pub mod composed;
pub mod control_plane;
pub mod corrupting;
pub mod envoy;
mod error;
pub mod etcd;
pub mod eventually;
pub mod hosts;
pub mod load;
pub mod mesh;
pub mod multihost;
pub mod paced;
pub mod paths;
pub mod peers;
pub mod pki;
pub mod process;
pub mod procstat;
pub mod raw_http;
pub mod relay;
pub mod replicas;
pub mod rollout;
pub mod signing;
pub mod swaps;
pub mod traffic;
pub mod upstream;
pub mod webhook;
pub mod wrk;

pub use error::HarnessError;
pub use eventually::eventually;
pub use mesh::Mesh;
