use super::*;

fn buckets() -> Buckets {
    Buckets::new(
        Shape {
            capacity: 2.0,
            refill_per_second: 0.5,
        },
        3,
    )
}

#[test]
fn a_burst_then_429_then_refill() {
    let mut b = buckets();
    assert_eq!(b.take("a", 0), Verdict::Allowed { remaining: 1 });
    assert_eq!(b.take("a", 0), Verdict::Allowed { remaining: 0 });
    assert_eq!(b.take("a", 0), Verdict::Limited { retry_after_s: 2 });
    assert_eq!(b.take("a", 1000), Verdict::Limited { retry_after_s: 1 });
    assert_eq!(b.take("a", 2000), Verdict::Allowed { remaining: 0 });
}

#[test]
fn keys_have_their_own_buckets() {
    let mut b = buckets();
    b.take("a", 0);
    b.take("a", 0);
    assert!(matches!(b.take("a", 0), Verdict::Limited { .. }));
    assert!(matches!(b.take("b", 0), Verdict::Allowed { .. }));
}

#[test]
fn the_key_count_is_bounded() {
    let mut b = buckets();
    for key in ["a", "b", "c", "d", "e"] {
        b.take(key, 0);
    }
    assert!(b.len() <= 3);
}

#[test]
fn a_clock_going_backwards_does_not_mint_tokens() {
    let mut b = buckets();
    b.take("a", 10_000);
    b.take("a", 10_000);
    assert!(matches!(b.take("a", 5_000), Verdict::Limited { .. }));
}
