use super::*;
use crate::rollout::state::tests::decision;

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn memory_and_disk_stay_bounded_however_many_decisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = LogLimits {
        in_memory: 100,
        rotate_bytes: 20_000,
        keep_files: 2,
    };
    let mut log = DecisionLog::open(dir.path(), limits).expect("open");
    for seq in 1..=5_000 {
        log.append(&decision(seq)).expect("append");
    }
    assert_eq!(log.recent().count(), 100);
    assert_eq!(log.recent().next().map(|d| d.seq), Some(4_901));
    assert_eq!(
        files(dir.path()),
        ["decisions.1.jsonl", "decisions.2.jsonl", "decisions.jsonl"]
    );
    let on_disk: u64 = fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum();
    assert!(on_disk <= 3 * 20_000, "{on_disk} bytes on disk");

    let reopened = DecisionLog::open(dir.path(), limits).expect("reopen");
    assert_eq!(reopened.last_seq(), 5_000);
    assert_eq!(reopened.recent().last().map(|d| d.seq), Some(5_000));
}

#[test]
fn a_torn_line_is_skipped_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = DecisionLog::open(dir.path(), LogLimits::default()).expect("open");
    log.append(&decision(1)).expect("append");
    drop(log);
    let path = dir.path().join("decisions.jsonl");
    let mut file = OpenOptions::new().append(true).open(&path).expect("open");
    file.write_all(b"{\"seq\":2,\"at_").expect("tear");
    let log = DecisionLog::open(dir.path(), LogLimits::default()).expect("reopen");
    assert_eq!(log.last_seq(), 1);
    assert_eq!(log.recent().count(), 1);
}

#[test]
fn an_entry_after_a_torn_line_is_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("decisions.jsonl");
    fs::write(&path, b"{\"seq\":1,\"at_").expect("torn");
    let mut log = DecisionLog::open(dir.path(), LogLimits::default()).expect("open");
    log.append(&decision(2)).expect("append");
    drop(log);
    let log = DecisionLog::open(dir.path(), LogLimits::default()).expect("reopen");
    assert_eq!(log.recent().map(|d| d.seq).collect::<Vec<_>>(), [2]);
}

#[test]
fn archived_decisions_are_read_across_rotated_files_a_page_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = LogLimits {
        in_memory: 10,
        rotate_bytes: 4_000,
        keep_files: 50,
    };
    let mut log = DecisionLog::open(dir.path(), limits).expect("open");
    for seq in 1..=300 {
        let mut entry = decision(seq);
        if seq % 3 == 0 {
            entry.plugin = "other".into();
        }
        log.append(&entry).expect("append");
    }
    assert!(
        files(dir.path()).len() > 3,
        "rotated: {:?}",
        files(dir.path())
    );
    let before = log.recent().next().map(|d| d.seq).expect("recent");
    assert_eq!(before, 291);
    let plugin = decision(1).plugin;
    let mut seen = Vec::new();
    let mut since = 0;
    loop {
        let page = read_archived(dir.path(), &plugin, (since, before), 25).expect("read");
        assert!(page.len() <= 25);
        let Some(last) = page.last() else { break };
        since = last.seq;
        seen.extend(page.iter().map(|d| d.seq));
    }
    let wanted: Vec<u64> = (1..before).filter(|s| s % 3 != 0).collect();
    assert_eq!(
        seen, wanted,
        "every archived decision of the plugin, once, in order"
    );
}

#[test]
fn an_archive_that_is_not_there_has_no_decisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = read_archived(&dir.path().join("none"), "authz", (0, 100), 10).expect("read");
    assert!(page.is_empty());
}
