//! Runs the gateway on its own: `nubo-gateway` is `nubo serve gateway`.
fn main() -> std::process::ExitCode {
    nubo_platform::cli::serve_main(&nubo_gateway::SERVICE)
}
