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
