use super::*;

#[test]
fn replaces_every_placeholder() {
    let mut vars = BootstrapVars::new();
    vars.insert("A", "1".into());
    vars.insert("B", "two".into());
    assert_eq!(
        render("x{{A}}y{{B}}z{{A}}", &vars).expect("renders"),
        "x1ytwoz1"
    );
}

#[test]
fn a_placeholder_may_say_its_default() {
    let mut vars = BootstrapVars::new();
    assert_eq!(
        render("{{HOST|127.0.0.1}}:1", &vars).expect("renders"),
        "127.0.0.1:1"
    );
    vars.insert("HOST", "198.18.0.1".into());
    assert_eq!(
        render("{{HOST|127.0.0.1}}:1", &vars).expect("renders"),
        "198.18.0.1:1"
    );
}

#[test]
fn an_unknown_placeholder_is_an_error() {
    let vars = BootstrapVars::new();
    let err = render("port: {{PORT}}", &vars).expect_err("unknown");
    assert!(err.to_string().contains("{{PORT}}"), "{err}");
    assert!(render("port: {{PORT", &vars).is_err());
}

#[test]
fn the_shipped_template_renders_with_the_standard_vars() {
    let template = include_str!("../../../../envoy-config/bootstrap.yaml");
    let vars = standard_vars(
        "n",
        "c",
        [
            ("ADMIN_PORT", 1),
            ("LISTENER_PORT", 2),
            ("XDS_PORT", 3),
            ("UPSTREAM_PORT", 4),
        ],
    );
    let rendered = render(template, &vars).expect("renders");
    assert!(!rendered.contains("{{"));
}
