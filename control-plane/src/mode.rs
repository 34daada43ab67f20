//! Where plugins are declared: the artifacts folder alone, or manifests.

use std::path::{Path, PathBuf};

use meshplug_core::rollout::placement::Governs;

/// Where plugins are declared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every build in the artifacts folder is a plugin, configured by `<name>.json` beside
    /// it, and goes to every proxy under the control plane's rollout policy.
    #[default]
    Folder,
    /// `kind: Plugin` manifests in `plugins` (hot-reloaded) say which plugins exist, their
    /// build, configuration, targets and rollout policy.
    Manifests {
        /// The watched folder of `kind: Plugin` manifests.
        plugins: PathBuf,
    },
    /// As [`Mode::Manifests`], and meshplug serves LDS, RDS and CDS from the `kind: Listener`
    /// and `kind: Cluster` manifests in `mesh`, composing each listener's filter chain.
    Mesh {
        /// The watched folder of `kind: Plugin` manifests.
        plugins: PathBuf,
        /// The watched folder of `kind: Listener` and `kind: Cluster` manifests.
        mesh: PathBuf,
    },
}

impl Mode {
    /// The manifest folders, plugins first.
    pub fn manifest_dirs(&self) -> Vec<&Path> {
        match self {
            Self::Folder => Vec::new(),
            Self::Manifests { plugins } => vec![plugins],
            Self::Mesh { plugins, mesh } => vec![plugins, mesh],
        }
    }

    /// Whether manifests govern which plugins exist and where they go.
    pub fn governed(&self) -> bool {
        !matches!(self, Self::Folder)
    }

    /// Which manifests count in this mode (clusters are served over CDS in every mode).
    pub fn governs(&self) -> Governs {
        match self {
            Self::Folder => Governs::Clusters,
            Self::Manifests { .. } => Governs::Plugins,
            Self::Mesh { .. } => Governs::Mesh,
        }
    }
}
