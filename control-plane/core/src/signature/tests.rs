//! Against keys and signatures made with the `minisign` tool (`testdata/`).

use super::*;

const A_PUB: &str = include_str!("testdata/a.pub");
const B_PUB: &str = include_str!("testdata/b.pub");
const BUILD: &[u8] = include_bytes!("testdata/build.wasm");
const BY_A: &str = include_str!("testdata/by-a.minisig");
const BY_B: &str = include_str!("testdata/by-b.minisig");

fn key(text: &str) -> TrustedKey {
    TrustedKey::parse(text).expect("a public key")
}

#[test]
fn the_key_id_is_the_one_minisign_prints() {
    let a = key(A_PUB);
    let printed = A_PUB.lines().next().and_then(|l| l.rsplit(' ').next());
    assert_eq!(Some(a.id.as_str()), printed);
    let bare = A_PUB.lines().nth(1).expect("base64 line");
    assert_eq!(key(bare).id, a.id, "the base64 line alone works too");
}

#[test]
fn a_build_signed_by_a_trusted_key_passes_with_its_signer() {
    let a = key(A_PUB);
    assert_eq!(
        verify(BUILD, Some(BY_A), &[key(B_PUB), a.clone()]),
        Ok(a.id)
    );
}

#[test]
fn unsigned_untrusted_and_tampered_builds_are_refused_with_the_reason() {
    let trusted = [key(A_PUB)];
    let unsigned = verify(BUILD, None, &trusted).expect_err("unsigned");
    assert!(unsigned.starts_with("unsigned"), "{unsigned}");
    let other = verify(BUILD, Some(BY_B), &trusted).expect_err("untrusted");
    assert!(
        other.contains(&key(B_PUB).id) && other.contains("not trusted"),
        "{other}"
    );
    let mut tampered = BUILD.to_vec();
    tampered[0] ^= 1;
    let err = verify(&tampered, Some(BY_A), &trusted).expect_err("tampered");
    assert!(err.contains("does not match these bytes"), "{err}");
    let garbage = verify(BUILD, Some("not a signature"), &trusted).expect_err("garbage");
    assert!(garbage.contains("not a minisign signature"), "{garbage}");
}

#[test]
fn a_bad_key_file_is_a_clear_error() {
    assert!(TrustedKey::parse("").is_err());
    let err = TrustedKey::parse("untrusted comment: x\nnot base64!").expect_err("bad");
    assert!(err.contains("not a minisign public key"), "{err}");
}

#[test]
fn a_threshold_counts_distinct_trusted_signers() {
    let (a, b) = (key(A_PUB), key(B_PUB));
    let policy = SignerPolicy {
        keys: vec![a.clone(), b.clone()],
        threshold: 2,
    };
    let one = policy
        .verify(BUILD, &[BY_A.to_string()])
        .expect_err("one of two");
    assert!(one.starts_with("1 of the 2 required signatures"), "{one}");
    assert!(one.contains(&format!("valid from {}", a.id)), "{one}");
    let twice = policy
        .verify(BUILD, &[BY_A.to_string(), BY_A.to_string()])
        .expect_err("the same key twice is one signer");
    assert!(twice.starts_with("1 of the 2"), "{twice}");
    let both = policy
        .verify(BUILD, &[BY_B.to_string(), BY_A.to_string()])
        .expect("two of two");
    assert_eq!(both, vec![a.id.clone(), b.id.clone()], "in key order");
    let mut tampered = BUILD.to_vec();
    tampered[0] ^= 1;
    let err = policy
        .verify(&tampered, &[BY_A.to_string(), BY_B.to_string()])
        .expect_err("tampered");
    assert!(
        err.starts_with("0 of the 2") && err.contains("does not match"),
        "{err}"
    );
}

#[test]
fn with_any_one_key_the_reason_is_the_signature_problem() {
    let policy = SignerPolicy::any_of(vec![key(A_PUB)]);
    let err = policy
        .verify(BUILD, &[BY_B.to_string()])
        .expect_err("untrusted");
    assert!(err.starts_with("signed by key"), "{err}");
    assert_eq!(
        policy.verify(BUILD, &[BY_B.to_string(), BY_A.to_string()]),
        Ok(vec![key(A_PUB).id])
    );
}

#[test]
fn a_key_id_with_a_leading_zero_is_printed_as_minisign_prints_it() {
    let mut bytes = b"Ed".to_vec();
    bytes.extend(0x06E9_14D2_FA33_569C_u64.to_le_bytes());
    bytes.extend([0u8; 32]);
    let line = base64::engine::general_purpose::STANDARD.encode(bytes);
    assert_eq!(key_id(&line, 2).as_deref(), Some("6E914D2FA33569C"));
}
