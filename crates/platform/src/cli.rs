//! Starting a service from the environment, shared by `nubo serve <service>` and each service's
//! own binary: read and validate settings (exiting with a message naming every bad variable
//! before any port opens), set up telemetry, bind, serve until SIGTERM or Ctrl-C.

use std::collections::BTreeMap;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::app::{Application, Wiring};
use crate::config::{self, ConfigError, Env, Mode, Settings};
use crate::service::ServiceDescription;
use crate::telemetry::{self, TelemetryConfig};

/// Every variable the given services may read.
pub fn known_variables(services: &[&ServiceDescription]) -> Vec<String> {
    let mut known: Vec<String> = config::PLATFORM_VARIABLES
        .iter()
        .map(|v| v.0.to_owned())
        .collect();
    known.extend(
        config::SERVICES
            .iter()
            .map(|s| config::url_variable(s.name)),
    );
    for desc in services {
        known.extend(desc.env.iter().map(|v| v.0.to_owned()));
    }
    known
}

/// What a service is started with, read from the environment.
pub struct ServiceEnvironment {
    pub settings: Settings,
    /// Its own variables (the names in its description's `env`).
    pub own: BTreeMap<String, String>,
    /// Base URLs of the services it calls.
    pub urls: BTreeMap<String, String>,
}

/// Settings, the service's own variables and the URLs of the services it calls. Problems are
/// recorded in `env`; check them with [`Env::finish`].
pub fn settings_for(
    env: &mut Env,
    desc: &ServiceDescription,
    default_mode: Mode,
) -> ServiceEnvironment {
    let mut settings = Settings::read(env, default_mode, desc.default_port());
    if settings.mode() == Mode::Distributed && settings.tls_dir.is_none() {
        env.fail(
            config::TLS_DIR,
            "is required in distributed mode: the directory of this service's tls.crt, tls.key \
             and ca.crt (`nubo certs` issues them; cert-manager in a cluster)",
        );
    }
    if settings.ops_addr.is_none()
        && let Some(port) = desc.ops_port()
    {
        settings.ops_addr = Some(std::net::SocketAddr::new(settings.http_addr.ip(), port));
    }
    let own: BTreeMap<String, String> = desc
        .env
        .iter()
        .filter_map(|(name, _, _)| env.raw(name).map(|v| ((*name).to_owned(), v.to_owned())))
        .collect();
    if let Some(check) = desc.check_env
        && let Err(e) = check(&own, settings.mode())
    {
        // A service that reads its variables through `Env` names each bad one: list them with
        // the platform's, not as one nested "invalid configuration".
        match e.downcast_ref::<config::ConfigError>() {
            Some(errors) => {
                for (name, why) in &errors.0 {
                    env.fail(name, why.clone());
                }
            }
            None => env.fail(&format!("{} settings", desc.name), format!("{e:#}")),
        }
    }
    let mut urls = BTreeMap::new();
    for target in desc.calls() {
        let var = config::url_variable(target);
        match env
            .raw(&var)
            .map(str::to_owned)
            .or_else(|| config::default_url(target))
        {
            Some(url) if url.starts_with("https://") => {
                urls.insert((*target).to_owned(), url.trim_end_matches('/').to_owned());
            }
            Some(url) => env.fail(
                &var,
                format!("{url:?} is not an https:// URL: calls between services are mutual TLS"),
            ),
            None => env.fail(&var, "is required: no default address for this service"),
        }
    }
    ServiceEnvironment {
        settings,
        own,
        urls,
    }
}

/// Reads the environment for running `desc` alone.
pub fn read_environment(desc: &ServiceDescription) -> Result<ServiceEnvironment, ConfigError> {
    let mut env = Env::from_process();
    let read = settings_for(&mut env, desc, Mode::Distributed);
    let known = known_variables(&[desc]);
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let others: Vec<&str> = config::SERVICES
        .iter()
        .map(|s| s.name)
        .filter(|n| *n != desc.name)
        .collect();
    env.reject_unknown(&known, &others);
    env.finish()?;
    Ok(read)
}

/// `main` of a service binary: runs `desc` from the environment until stopped.
pub fn serve_main(desc: &'static ServiceDescription) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(desc)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `desc` from the environment until SIGTERM or Ctrl-C.
pub async fn serve(desc: &'static ServiceDescription) -> anyhow::Result<()> {
    let ServiceEnvironment {
        settings,
        own,
        urls,
    } = read_environment(desc)?;
    let _telemetry = telemetry::init(TelemetryConfig {
        process: desc.name,
        filter: &settings.log_filter,
        format: settings.log_format,
        otlp_endpoint: settings.otlp_endpoint.as_deref(),
        quiet_start: false,
    })?;
    crate::server::raise_open_file_limit();
    let app = Application::bind(desc, settings, own).await?;
    tracing::info!(service = desc.name, port = app.port(), "listening");
    let token = CancellationToken::new();
    tokio::spawn({
        let token = token.clone();
        async move {
            crate::server::shutdown_signal().await;
            tracing::info!("shutdown requested");
            token.cancel();
        }
    });
    app.run_until_stopped(
        Wiring {
            service_urls: urls,
            embedded_bus: None,
        },
        token,
    )
    .await
}
