use super::*;

fn quiet() -> Quiet {
    Quiet {
        after_close: Duration::from_millis(100),
        without_close: Duration::from_secs(2),
    }
}

#[test]
fn rename_is_due_at_once() {
    let mut d = Debouncer::new(quiet());
    let t0 = Instant::now();
    let p = Path::new("/w/a.wasm");
    assert_eq!(
        d.on_change(p, FsChange::RenamedIn, t0),
        Some(p.to_path_buf())
    );
    assert!(d.next_deadline().is_none());
}

#[test]
fn in_place_write_waits_for_close_and_quiet() {
    let mut d = Debouncer::new(quiet());
    let t0 = Instant::now();
    let p = Path::new("/w/a.wasm");
    assert_eq!(d.on_change(p, FsChange::Written, t0), None);
    assert!(d.take_due(t0 + Duration::from_millis(500)).is_empty());
    d.on_change(
        p,
        FsChange::ClosedAfterWrite,
        t0 + Duration::from_millis(600),
    );
    assert!(d.take_due(t0 + Duration::from_millis(650)).is_empty());
    assert_eq!(
        d.take_due(t0 + Duration::from_millis(700)),
        vec![p.to_path_buf()]
    );
    assert!(
        d.take_due(t0 + Duration::from_secs(10)).is_empty(),
        "due only once"
    );
}

#[test]
fn slow_writer_keeps_resetting_the_clock() {
    let mut d = Debouncer::new(quiet());
    let t0 = Instant::now();
    let p = Path::new("/w/a.wasm");
    for i in 0..20 {
        let t = t0 + Duration::from_millis(500 * i);
        d.on_change(p, FsChange::Written, t);
        assert!(
            d.take_due(t).is_empty(),
            "a file still being written is never due"
        );
    }
    let last = t0 + Duration::from_millis(500 * 19);
    assert_eq!(d.next_deadline(), Some(last + Duration::from_secs(2)));
    assert_eq!(
        d.take_due(last + Duration::from_secs(2)),
        vec![p.to_path_buf()]
    );
}

#[test]
fn a_write_after_close_reopens_the_wait() {
    let mut d = Debouncer::new(quiet());
    let t0 = Instant::now();
    let p = Path::new("/w/a.wasm");
    d.on_change(p, FsChange::ClosedAfterWrite, t0);
    d.on_change(p, FsChange::Written, t0 + Duration::from_millis(50));
    assert!(d.take_due(t0 + Duration::from_millis(200)).is_empty());
}

#[test]
fn a_removal_is_due_after_the_short_quiet_once() {
    let mut d = Debouncer::new(quiet());
    let t0 = Instant::now();
    let p = Path::new("/w/a.wasm");
    d.on_change(p, FsChange::ClosedAfterWrite, t0);
    d.on_change(p, FsChange::Removed, t0);
    assert!(
        d.take_due(t0 + Duration::from_millis(10)).is_empty(),
        "quiet first"
    );
    assert_eq!(d.take_due(t0 + Duration::from_secs(5)), [p.to_path_buf()]);
    assert!(d.take_due(t0 + Duration::from_secs(6)).is_empty(), "once");
}
