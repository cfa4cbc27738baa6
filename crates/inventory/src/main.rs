//! Runs inventory on its own: `nubo-inventory` is `nubo serve inventory`.
fn main() -> std::process::ExitCode {
    nubo_platform::cli::serve_main(&nubo_inventory::SERVICE)
}
