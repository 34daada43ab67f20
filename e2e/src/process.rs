//! A child process that is killed (by its PID) and reaped when dropped.

use std::process::{Child, Command};

use crate::HarnessError;

/// Owns a child process; dropping it kills and reaps it.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
}

impl ChildGuard {
    /// Spawns `command`.
    pub fn spawn(name: &str, command: &mut Command) -> Result<Self, HarnessError> {
        let child = command
            .spawn()
            .map_err(HarnessError::io(format!("starting {name}")))?;
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
        })
    }

    /// The PID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Sends SIGKILL and reaps the process now.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `within` for the process to exit; its exit status, or
    /// `None` if it is still running (the guard still kills it on drop).
    pub async fn terminate(
        &mut self,
        within: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let pid = i32::try_from(self.pid()?).ok()?;
        // SAFETY: `kill` has no memory-safety preconditions; `pid` is our own child, not yet
        // reaped (the guard still holds it), so the PID cannot have been reused.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Some(status);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        None
    }

    /// Stops the process (SIGSTOP) or lets it go on (SIGCONT, `stopped` false): a proxy that
    /// hangs, for as long as a test needs.
    pub fn set_stopped(&self, stopped: bool) {
        let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) else {
            return;
        };
        let signal = if stopped {
            libc::SIGSTOP
        } else {
            libc::SIGCONT
        };
        // SAFETY: `kill` has no memory-safety preconditions; `pid` is our own child, not yet
        // reaped (the guard still holds it), so the PID cannot have been reused.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// Its name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
