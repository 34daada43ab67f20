use super::*;

const HEADER: &[u8] = b"\0asm\x01\0\0\0";

#[test]
fn table_of_refusals() {
    let limits = Limits {
        max_artifact_bytes: 64,
        ..Limits::default()
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
        Ok(ArtifactFacts::default())
    );
    // A custom section (id 0) of 3 bytes, then a type section (id 1) of 1 byte.
    let framed = [HEADER, b"\x00\x03abc\x01\x01\x00"].concat();
    assert_eq!(
        check_artifact(ArtifactKind::Wasm, &framed, Limits::default()),
        Ok(ArtifactFacts::default())
    );
}

#[test]
fn every_strict_prefix_of_a_module_is_refused() {
    let module = [HEADER, b"\x00\x03abc\x01\x04\x01\x60\x00\x00"].concat();
    assert_eq!(
        check_artifact(ArtifactKind::Wasm, &module, Limits::default()),
        Ok(ArtifactFacts::default())
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

fn native(bytes: &[u8]) -> Result<ArtifactFacts, Rejection> {
    // The test binary stands in for a large ELF; size is not what these tests are about.
    let unlimited = Limits {
        max_artifact_bytes: u64::MAX,
        ..Limits::default()
    };
    check_artifact(ArtifactKind::Native, bytes, unlimited)
}

#[test]
fn a_non_elf_file_is_not_a_dynamic_module() {
    let err = native(b"#!/bin/sh\necho hi\n").expect_err("refused");
    assert_eq!(
        err.to_string(),
        "not a ELF shared object file: no ELF magic number"
    );
    let wasm_named_so = native(HEADER).expect_err("refused");
    assert!(matches!(wasm_named_so, Rejection::WrongFormat { .. }));
}

#[test]
fn a_truncated_elf_is_refused() {
    let exe = std::fs::read(std::env::current_exe().expect("test binary")).expect("readable");
    for cut in [4, 20, 63, 64, 200, exe.len() / 2] {
        let err = native(&exe[..cut]).expect_err("truncated");
        assert!(
            matches!(
                err,
                Rejection::WrongFormat { .. } | Rejection::MissingHooks { .. }
            ),
            "cut at {cut}: {err}"
        );
    }
}

#[test]
fn a_shared_object_without_the_hooks_names_them() {
    // This test binary is an ELF for this machine, but no dynamic module.
    let exe = std::fs::read(std::env::current_exe().expect("test binary")).expect("readable");
    match native(&exe) {
        Err(Rejection::MissingHooks { missing }) => {
            assert_eq!(missing.len(), REQUIRED_HOOKS.len());
            assert_eq!(missing[0], "envoy_dynamic_module_on_program_init");
        }
        Err(Rejection::WrongFormat { detail, .. }) => {
            assert!(detail.contains("not a shared object"), "{detail}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
