use super::*;

const HEADER: &[u8] = b"\0asm\x01\0\0\0";

#[test]
fn table_of_refusals() {
    let limits = Limits {
        max_artifact_bytes: 64,
    };
    let big = [HEADER, &[0u8; 100][..]].concat();
    let table: [(&[u8], &str); 5] = [
        (b"", "empty file"),
        (b"\x7fELF\x02\x01\x01\0", "no \\0asm magic"),
        (b"\0as", "no \\0asm magic"),
        (b"\0asm\x02\0\0\0", "unsupported binary version"),
        (&big, "over the limit of 64 bytes"),
    ];
    for (bytes, needle) in table {
        let err = check_artifact(ArtifactKind::Wasm, bytes, limits).expect_err("refused");
        assert!(err.to_string().contains(needle), "{err} should say {needle}");
    }
}

#[test]
fn a_wasm_header_passes() {
    assert_eq!(check_artifact(ArtifactKind::Wasm, HEADER, Limits::default()), Ok(()));
}
