//! Runs identity on its own: `nubo-identity` is `nubo serve identity`.
fn main() -> std::process::ExitCode {
    nubo_platform::cli::serve_main(&nubo_identity::SERVICE)
}
