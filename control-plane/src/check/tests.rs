use super::*;

const HEADER: &[u8] = b"\0asm\x01\0\0\0";

#[test]
fn table_of_refusals() {
    let limits = Limits {
        max_artifact_bytes: 64,
    };
    let big = [HEADER, &[0u8; 100][..]].concat();
    let table: [(&[u8], &str); 8] = [
        (
            b"\0asm\x01\0\0\0\x01\x05\x01",
            "truncated Wasm: section 1 at offset 8 needs 5 bytes, 1 left",
        ),
        (b"\0asm\x01\0\0\0\x01\x85", "truncated Wasm"),
        (b"\0asm\x01\0\0\0\x2a\x00", "unknown section id 42"),
        (b"", "empty file"),
        (b"\x7fELF\x02\x01\x01\0", "no \\0asm magic"),
        (b"\0as", "no \\0asm magic"),
        (b"\0asm\x02\0\0\0", "unsupported binary version"),
        (&big, "over the limit of 64 bytes"),
    ];
    for (bytes, needle) in table {
        let err = check_artifact(ArtifactKind::Wasm, bytes, limits).expect_err("refused");
        assert!(
            err.to_string().contains(needle),
            "{err} should say {needle}"
        );
    }
}

#[test]
fn well_framed_wasm_passes() {
    assert_eq!(
        check_artifact(ArtifactKind::Wasm, HEADER, Limits::default()),
        Ok(())
    );
    // A custom section (id 0) of 3 bytes, then a type section (id 1) of 1 byte.
    let framed = [HEADER, b"\x00\x03abc\x01\x01\x00"].concat();
    assert_eq!(
        check_artifact(ArtifactKind::Wasm, &framed, Limits::default()),
        Ok(())
    );
}

#[test]
fn every_strict_prefix_of_a_module_is_refused() {
    let module = [HEADER, b"\x00\x03abc\x01\x04\x01\x60\x00\x00"].concat();
    assert_eq!(
        check_artifact(ArtifactKind::Wasm, &module, Limits::default()),
        Ok(())
    );
    for cut in 1..module.len() {
        let prefix = &module[..cut];
        // Cutting exactly at a section boundary leaves a well-framed (shorter) module.
        let at_boundary = [8, 13].contains(&cut);
        assert_eq!(
            check_artifact(ArtifactKind::Wasm, prefix, Limits::default()).is_ok(),
            at_boundary,
            "prefix of {cut} bytes"
        );
    }
}
