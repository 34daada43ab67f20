//! The watch of the manifest folders on a real folder (inotify): reading the manifests, as
//! every reload does, is no change; writing one is.

use std::time::Duration;

use super::*;

const MANIFEST: &str = "apiVersion: meshplug.dev/v1alpha1\nkind: Cluster\n";

async fn quiet_for(changes: &mut mpsc::Receiver<()>, wait: Duration) -> bool {
    tokio::time::timeout(wait, changes.recv()).await.is_err()
}

#[tokio::test]
async fn reading_the_manifests_is_no_change_and_writing_one_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("mesh");
    std::fs::create_dir_all(&folder).expect("folder");
    std::fs::write(folder.join("upstream.yaml"), MANIFEST).expect("write");
    let dirs = vec![folder.clone()];
    let (_watcher, mut changes) = ManifestWatcher::start(&dirs, Default::default()).expect("watch");
    for _ in 0..5 {
        let scanned = scan(&dirs).expect("scan");
        assert_eq!(scanned.len(), 1);
    }
    assert!(
        quiet_for(&mut changes, QUIET * 4).await,
        "the scan's own reads were taken for a change"
    );
    std::fs::write(
        folder.join("upstream.yaml"),
        format!("{MANIFEST}# edited\n"),
    )
    .expect("write");
    assert!(
        !quiet_for(&mut changes, Duration::from_secs(5)).await,
        "an edit was missed"
    );
}
