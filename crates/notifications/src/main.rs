//! Runs notifications on its own: `nubo-notifications` is `nubo serve notifications`.
fn main() -> std::process::ExitCode {
    nubo_platform::cli::serve_main(&nubo_notifications::SERVICE)
}
