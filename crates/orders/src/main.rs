//! Runs orders on its own: `nubo-orders` is `nubo serve orders`.
fn main() -> std::process::ExitCode {
    nubo_platform::cli::serve_main(&nubo_orders::SERVICE)
}
