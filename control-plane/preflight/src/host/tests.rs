use super::*;

#[test]
fn pairs_round_trip() {
    let pairs: Pairs = vec![
        (":status".into(), "200".into()),
        ("x-empty".into(), String::new()),
        ("x-a".into(), "b c".into()),
    ];
    let bytes = serialize_pairs(&pairs);
    assert_eq!(&bytes[..4], &3u32.to_le_bytes());
    assert_eq!(deserialize_pairs(&bytes), Some(pairs));
}

#[test]
fn truncated_pairs_are_refused() {
    let bytes = serialize_pairs(&[("k".into(), "v".into())]);
    for cut in 0..bytes.len() - 1 {
        assert_eq!(deserialize_pairs(&bytes[..cut]), None, "cut at {cut}");
    }
}
