//! Runs the cart on its own: `nubo-cart` is `nubo serve cart`.
fn main() -> std::process::ExitCode {
    nubo_platform::cli::serve_main(&nubo_cart::SERVICE)
}
