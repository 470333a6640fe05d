//! Refusing to listen publicly without authentication.

use crate::config::ServeConfig;

/// Without authentication anyone who reaches a port can read or write everything, so the
/// server only listens on loopback addresses unless `--insecure` says otherwise (and then
/// warns). The OTLP ports may listen publicly once ingest needs API keys, the UI/API once
/// logins are required (some user exists).
pub fn check_exposure(config: &ServeConfig, ingest_keys: bool, users: bool) -> anyhow::Result<()> {
    let public: Vec<String> = [
        ("UI/API", config.http_addr, users),
        ("OTLP/gRPC", config.otlp_grpc_addr, ingest_keys),
        ("OTLP/HTTP", config.otlp_http_addr, ingest_keys),
    ]
    .iter()
    .filter(|(_, a, protected)| !a.ip().is_loopback() && !protected)
    .map(|(what, a, _)| format!("{what} on {a}"))
    .collect();
    if public.is_empty() {
        return Ok(());
    }
    if !config.insecure {
        anyhow::bail!(
            "refusing to listen on a non-loopback address without authentication ({}); \
             bind to 127.0.0.1, or pass --insecure to accept that anyone who can reach these \
             ports can read and write all data",
            public.join(", ")
        );
    }
    tracing::warn!(
        "INSECURE: listening without authentication on {}; anyone who can reach these ports \
         can read and write all data",
        public.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_exposure;
    use crate::config::ServeArgs;

    fn config(http: &str, otlp: &str, insecure: bool) -> crate::config::ServeConfig {
        ServeArgs {
            http_addr: Some(http.parse().unwrap()),
            otlp_grpc_addr: Some(otlp.parse().unwrap()),
            otlp_http_addr: Some("127.0.0.1:0".parse().unwrap()),
            insecure,
            ..Default::default()
        }
        .resolve()
        .unwrap()
    }

    #[test]
    fn public_ports_need_their_authentication_or_insecure() {
        assert!(check_exposure(&config("127.0.0.1:0", "127.0.0.1:0", false), false, false).is_ok());
        let refused = check_exposure(&config("0.0.0.0:0", "127.0.0.1:0", false), false, false)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("UI/API on 0.0.0.0:0") && refused.contains("--insecure"),
            "{refused}"
        );
        // Logins protect the UI/API; API keys protect the OTLP ports.
        assert!(check_exposure(&config("0.0.0.0:0", "127.0.0.1:0", false), false, true).is_ok());
        assert!(check_exposure(&config("127.0.0.1:0", "0.0.0.0:0", false), false, true).is_err());
        assert!(check_exposure(&config("127.0.0.1:0", "0.0.0.0:0", false), true, false).is_ok());
        assert!(check_exposure(&config("0.0.0.0:0", "0.0.0.0:0", true), false, false).is_ok());
    }
}
