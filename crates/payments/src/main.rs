//! Runs payments on its own: `nubo-payments` is `nubo serve payments`.
fn main() -> std::process::ExitCode {
    nubo_platform::cli::serve_main(&nubo_payments::SERVICE)
}
