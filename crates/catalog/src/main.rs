//! Runs the catalog on its own: `nubo-catalog` is `nubo serve catalog`.
fn main() -> std::process::ExitCode {
    nubo_platform::cli::serve_main(&nubo_catalog::SERVICE)
}
