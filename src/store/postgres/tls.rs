//! TLS to PostgreSQL, as libpq's `sslmode` and `sslrootcert` describe it, so that the URL a
//! managed database hands out works as written. The driver understands only `disable`, `prefer`
//! and `require` and has no `sslrootcert`, so both are taken out of the URL here and turned into
//! the driver's mode plus a rustls configuration:
//!
//! - `disable`: plain TCP.
//! - `prefer` (the default, as in libpq; `allow` is taken as it): TLS when the server offers it,
//!   else plain, and plain again when the handshake fails (`conn.rs` retries). The certificate is
//!   checked only when `sslrootcert` names a file, against that file, as libpq does.
//! - `require`: TLS or no connection; the certificate is checked as under `prefer`.
//! - `verify-ca`: the certificate must chain to the roots in the file `sslrootcert` names (a
//!   file is required: any publicly trusted certificate would pass a check against public roots
//!   that ignores the name).
//! - `verify-full`: it must chain to a trusted root and name the host connected to. The roots are
//!   the file `sslrootcert` names, or the Mozilla roots built into the binary (the ones provider
//!   calls trust) when it is absent or `system`. libpq would read `~/.postgresql/root.crt`
//!   instead; a node has no such home, and a public root is safe where the name is checked.
//!
//! `sslrootcert=system` asks for `verify-full` and refuses any weaker mode, as libpq 16 does.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres::config::SslMode as DriverMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What `sslmode` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// What `sslrootcert` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of trusted roots.
    File(PathBuf),
    /// The Mozilla roots built into the binary.
    System,
}

/// What is checked of the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Nothing: the channel is encrypted against listeners, not against an impostor.
    Nothing,
    /// That it chains to a trusted root.
    Chain,
    /// That it chains to a trusted root and names the host.
    ChainAndName,
}

/// The TLS half of a store URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    pub root_cert: Option<RootCert>,
}

/// Splits `url` into the URL the driver is given (without `sslmode` and `sslrootcert`) and the
/// TLS settings they named. The error names the parameter and what is wrong with it.
pub fn split(url: &str) -> Result<(String, TlsSettings), String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut mode = None;
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        // Percent-decoded only: a '+' in a file name stays a '+', as libpq reads it.
        let escaped = pair.replace('+', "%2B");
        let (key, value) = url::form_urlencoded::parse(escaped.as_bytes())
            .next()
            .unwrap_or_default();
        match key.as_ref() {
            "sslmode" => mode = Some(parse_mode(&value)?),
            "sslrootcert" if value == "system" => root_cert = Some(RootCert::System),
            "sslrootcert" => root_cert = Some(RootCert::File(PathBuf::from(&*value))),
            _ => kept.push(pair),
        }
    }
    let mode = match (mode, &root_cert) {
        (None | Some(SslMode::VerifyFull), Some(RootCert::System)) => SslMode::VerifyFull,
        (Some(weaker), Some(RootCert::System)) => {
            return Err(format!(
                "sslrootcert=system needs sslmode=verify-full (not {})",
                mode_name(weaker)
            ));
        }
        (Some(SslMode::VerifyCa), None) => {
            return Err(
                "sslmode=verify-ca needs sslrootcert naming the PEM file of the CA \
                        that signed the server's certificate"
                    .into(),
            );
        }
        (mode, _) => mode.unwrap_or(SslMode::Prefer),
    };
    let stripped = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((stripped, TlsSettings { mode, root_cert }))
}

fn parse_mode(value: &str) -> Result<SslMode, String> {
    Ok(match value {
        "disable" => SslMode::Disable,
        "prefer" | "allow" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        other => {
            return Err(format!(
                "sslmode={other:?}: expected disable, allow, prefer, require, verify-ca or \
                 verify-full"
            ));
        }
    })
}

fn mode_name(mode: SslMode) -> &'static str {
    match mode {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        SslMode::Require => "require",
        SslMode::VerifyCa => "verify-ca",
        SslMode::VerifyFull => "verify-full",
    }
}

impl TlsSettings {
    /// The driver's own mode: whether it asks the server for TLS and whether it may go on
    /// without it. What is checked of the certificate is the connector's part.
    pub fn driver_mode(&self) -> DriverMode {
        match self.mode {
            SslMode::Disable => DriverMode::Disable,
            SslMode::Prefer => DriverMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverMode::Require,
        }
    }

    /// Whether a failed handshake may be followed by a plain connection (`prefer`).
    pub fn falls_back_to_plain(&self) -> bool {
        self.mode == SslMode::Prefer
    }

    pub fn check(&self) -> Check {
        let file = matches!(self.root_cert, Some(RootCert::File(_)));
        match self.mode {
            SslMode::VerifyFull => Check::ChainAndName,
            SslMode::VerifyCa => Check::Chain,
            SslMode::Prefer | SslMode::Require if file => Check::Chain,
            SslMode::Disable | SslMode::Prefer | SslMode::Require => Check::Nothing,
        }
    }

    /// The connector every connection of the store is made with. Fails on a root file that
    /// cannot be read or holds no certificate, naming the file.
    pub fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?;
        let algorithms = provider.signature_verification_algorithms;
        let config = match self.check() {
            Check::Nothing => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Lenient {
                    chain: None,
                    algorithms,
                })),
            check @ (Check::Chain | Check::ChainAndName) => {
                let chain = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(self.roots()?),
                    provider.clone(),
                )
                .build()
                .map_err(|e| format!("TLS setup failed: {e}"))?;
                if check == Check::ChainAndName {
                    builder.with_webpki_verifier(chain)
                } else {
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(Lenient {
                            chain: Some(chain),
                            algorithms,
                        }))
                }
            }
        };
        Ok(MakeRustlsConnect::new(config.with_no_client_auth()))
    }

    fn roots(&self) -> Result<RootCertStore, String> {
        let Some(RootCert::File(path)) = &self.root_cert else {
            return Ok(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            });
        };
        let shown = path.display();
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("sslrootcert {shown}: {e}"))?;
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("sslrootcert {shown}: no certificate in it"));
        }
        Ok(roots)
    }
}

/// The checks short of [`Check::ChainAndName`]. In every case the handshake's signatures are
/// checked against the certificate presented, so the channel is encrypted to whoever holds its
/// key.
/// - `chain: None` ([`Check::Nothing`], libpq's `prefer` and `require` without a root file):
///   who holds it is not checked.
/// - `chain: Some` ([`Check::Chain`]): the full check against the operator's own roots, except
///   that a certificate naming another host passes. webpki checks the name last, after the
///   chain, validity and revocation, so that error means everything else was good.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> (String, TlsSettings) {
        split(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn the_tls_parameters_are_taken_out_and_the_rest_kept() {
        let (url, tls) = settings(
            "postgres://u:p@db.example:5432/x?connect_timeout=3&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca%20file.pem&application_name=a",
        );
        assert_eq!(
            url,
            "postgres://u:p@db.example:5432/x?connect_timeout=3&application_name=a"
        );
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(
            tls.root_cert,
            Some(RootCert::File(PathBuf::from("/etc/ca file.pem")))
        );
        let (_, tls) = settings("postgres://h/x?sslmode=verify-ca&sslrootcert=/etc/a+b.pem");
        assert_eq!(
            tls.root_cert,
            Some(RootCert::File(PathBuf::from("/etc/a+b.pem"))),
            "a '+' is not a space"
        );
        let (url, tls) = settings("postgres://u@db.example/x");
        assert_eq!(url, "postgres://u@db.example/x");
        assert_eq!(tls.mode, SslMode::Prefer, "libpq's default");
        assert_eq!(
            settings("postgres://h/x?sslmode=disable").0,
            "postgres://h/x"
        );
    }

    #[test]
    fn what_is_checked_follows_libpq() {
        let check = |query: &str| settings(&format!("postgres://h/x?{query}")).1.check();
        assert_eq!(check(""), Check::Nothing);
        assert_eq!(check("sslmode=require"), Check::Nothing);
        assert_eq!(
            check("sslrootcert=/ca.pem"),
            Check::Chain,
            "prefer with a root file"
        );
        assert_eq!(check("sslmode=require&sslrootcert=/ca.pem"), Check::Chain);
        assert_eq!(check("sslmode=verify-ca&sslrootcert=/ca.pem"), Check::Chain);
        assert_eq!(check("sslmode=verify-full"), Check::ChainAndName);
        // `system` means verify-full, and nothing weaker.
        let (_, tls) = settings("postgres://h/x?sslrootcert=system");
        assert_eq!(
            (tls.mode, tls.check()),
            (SslMode::VerifyFull, Check::ChainAndName)
        );
        for weaker in ["require", "prefer", "verify-ca", "disable"] {
            let err = split(&format!(
                "postgres://h/x?sslmode={weaker}&sslrootcert=system"
            ))
            .expect_err(weaker);
            assert!(err.contains("verify-full"), "{err}");
        }
        // verify-ca against public roots would take any public certificate: a file is needed.
        let err = split("postgres://h/x?sslmode=verify-ca").unwrap_err();
        assert!(err.contains("sslrootcert"), "{err}");
        assert!(
            settings("postgres://h/x?sslmode=prefer")
                .1
                .falls_back_to_plain()
        );
        assert!(
            !settings("postgres://h/x?sslmode=require")
                .1
                .falls_back_to_plain()
        );
    }

    #[test]
    fn an_unknown_mode_is_named() {
        let err = split("postgres://h/x?sslmode=strict").unwrap_err();
        assert!(err.contains("sslmode=\"strict\""), "{err}");
    }

    #[test]
    fn a_root_file_that_is_missing_or_empty_is_named() {
        let missing = TlsSettings {
            mode: SslMode::VerifyFull,
            root_cert: Some(RootCert::File(PathBuf::from("/no/such/ca.pem"))),
        };
        let err = missing.connector().err().unwrap_or_default();
        assert!(err.contains("/no/such/ca.pem"), "{err}");
        let dir = std::env::temp_dir().join(format!("stockyard-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = TlsSettings {
            mode: SslMode::VerifyCa,
            root_cert: Some(RootCert::File(empty.clone())),
        }
        .connector()
        .err()
        .unwrap_or_default();
        assert!(err.contains("no certificate"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Against the test server (`STOCKYARD_TEST_PG`): each mode connects, or refuses, as its
    /// description says, and a whole store opens over `verify-full`.
    #[test]
    fn each_mode_connects_to_the_server_as_described() {
        use super::super::conn::{Target, once};
        use super::super::testing;
        use crate::store::{StoreError, StoreUrl};

        let Some(schema) = testing::schema() else {
            return;
        };
        let base = schema.url.to_string();
        let with = |url: &str, query: &str| {
            let sep = if url.contains('?') { '&' } else { '?' };
            StoreUrl::parse(&format!("{url}{sep}{query}")).unwrap()
        };
        // Whether the connection `url` makes is encrypted; the error in words if none is made.
        let encrypted = |url: &StoreUrl| -> Result<bool, String> {
            let target = Target::parse(url).map_err(|e| e.to_string())?;
            once(async || {
                let client = target.connect().await?;
                let row = client
                    .query_one(
                        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                        &[],
                    )
                    .await?;
                Ok::<bool, StoreError>(row.get(0))
            })
            .map_err(|e| e.to_string())
        };
        assert_eq!(encrypted(&with(&base, "sslmode=disable")), Ok(false));
        let offered = encrypted(&schema.url).unwrap();
        if !offered {
            eprintln!("skipped the TLS half: the server at {base} does not offer TLS");
            return;
        }
        assert_eq!(encrypted(&with(&base, "sslmode=require")), Ok(true));
        // A root file that did not sign the server's certificate: `require` refuses, `prefer`
        // connects without TLS, as libpq does.
        let other_ca = PathBuf::from("/etc/ssl/certs/ISRG_Root_X1.pem");
        if other_ca.exists() {
            let wrong = format!("sslrootcert={}", other_ca.display());
            let err = encrypted(&with(&base, &format!("sslmode=require&{wrong}")))
                .expect_err("the server's certificate is not signed by that root");
            assert!(err.contains("UnknownIssuer"), "{err}");
            assert_eq!(
                encrypted(&with(&base, &format!("sslmode=prefer&{wrong}"))),
                Ok(false)
            );
        }

        // The rest needs the server's own certificate and a host name it names: the local
        // server (Debian's, with its snakeoil certificate for `localhost`).
        let cert = PathBuf::from("/etc/ssl/certs/ssl-cert-snakeoil.pem");
        if !base.contains("@127.0.0.1:") || !cert.exists() {
            eprintln!("skipped the verify half: not the local server with its snakeoil cert");
            return;
        }
        let root = format!("sslrootcert={}", cert.display());
        assert_eq!(
            encrypted(&with(&base, &format!("sslmode=verify-ca&{root}"))),
            Ok(true),
            "verify-ca does not check the name"
        );
        let by_address = encrypted(&with(&base, &format!("sslmode=verify-full&{root}")));
        let err = by_address.expect_err("the certificate names localhost, not 127.0.0.1");
        assert!(err.contains("not valid for name"), "{err}");
        let by_name = base.replace("@127.0.0.1:", "@localhost:");
        let full = with(&by_name, &format!("sslmode=verify-full&{root}"));
        assert_eq!(encrypted(&full), Ok(true));
        let err = encrypted(&with(&by_name, "sslmode=verify-full"))
            .expect_err("a self-signed certificate is not among the built-in roots");
        assert!(err.contains("UnknownIssuer"), "{err}");

        // A whole store (pool, writer, change watch) over verify-full.
        let store = crate::store::open(&full, crate::store::suite::key());
        assert!(store.is_ok(), "{:?}", store.err());
    }
}
