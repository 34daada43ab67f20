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
