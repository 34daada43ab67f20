//! The `meshplug` binary. Parsing and every command live in the library: [`meshplug::cli`].

fn main() -> anyhow::Result<()> {
    meshplug::cli::main()
}
