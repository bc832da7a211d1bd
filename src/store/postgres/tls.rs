//! TLS to PostgreSQL, as libpq's `sslmode` and `sslrootcert` describe it, so that the URL a
//! managed database hands out works as written. The driver understands only `disable`, `prefer`
//! and `require` and has no `sslrootcert`, so both are taken out of the URL here and turned into
//! the driver's mode plus a rustls configuration:
//!
//! - `disable`: plain TCP.
//! - `prefer` (the default, as in libpq): TLS when the server offers it, else plain; the
//!   certificate is not checked.
//! - `require`: TLS or no connection; the certificate is not checked, unless `sslrootcert` is
//!   given, which makes it `verify-ca` (libpq does the same).
//! - `verify-ca`: the certificate must chain to a trusted root; its name is not checked.
//! - `verify-full`: it must chain to a trusted root and name the host connected to.
//!
//! Trusted roots: the PEM file `sslrootcert` names, or the Mozilla roots built into the binary
//! (the ones provider calls trust) when it is absent or `system`. libpq would read
//! `~/.postgresql/root.crt` instead; a node has no such home, so the choice is explicit.

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

/// The TLS half of a store URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file of trusted roots; `None` for the built-in roots.
    pub root_cert: Option<PathBuf>,
}

/// Splits `url` into the URL the driver is given (without `sslmode` and `sslrootcert`) and the
/// TLS settings they named. The error names the parameter and what is wrong with it.
pub fn split(url: &str) -> Result<(String, TlsSettings), String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut mode = None;
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = url::form_urlencoded::parse(pair.as_bytes())
            .next()
            .unwrap_or_default();
        match key.as_ref() {
            "sslmode" => mode = Some(parse_mode(&value)?),
            "sslrootcert" => root_cert = (value != "system").then(|| PathBuf::from(&*value)),
            _ => kept.push(pair),
        }
    }
    let mode = match (mode.unwrap_or(SslMode::Prefer), &root_cert) {
        (SslMode::Require, Some(_)) => SslMode::VerifyCa,
        (mode, _) => mode,
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

    /// The connector every connection of the store is made with. Fails on a root file that
    /// cannot be read or holds no certificate, naming the file.
    pub fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?;
        let config = match self.mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(
                    provider.signature_verification_algorithms,
                ))),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let chain = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(self.roots()?),
                    provider.clone(),
                )
                .build()
                .map_err(|e| format!("TLS setup failed: {e}"))?;
                if self.mode == SslMode::VerifyFull {
                    builder.with_webpki_verifier(chain)
                } else {
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(AnyName(chain)))
                }
            }
        };
        Ok(MakeRustlsConnect::new(config.with_no_client_auth()))
    }

    fn roots(&self) -> Result<RootCertStore, String> {
        let Some(path) = &self.root_cert else {
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

/// `prefer` and `require`: the channel is encrypted and the handshake's signatures are checked
/// against the certificate it presents, but who presents it is not (libpq's meaning of them).
#[derive(Debug)]
struct EncryptOnly(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the full check, except that a certificate naming another host passes. webpki
/// checks the name last, after the chain, so that error means the chain was good.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
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
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
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
        assert_eq!(tls.root_cert, Some(PathBuf::from("/etc/ca file.pem")));
        let (url, tls) = settings("postgres://u@db.example/x");
        assert_eq!(url, "postgres://u@db.example/x");
        assert_eq!(tls.mode, SslMode::Prefer, "libpq's default");
        assert_eq!(
            settings("postgres://h/x?sslmode=disable").0,
            "postgres://h/x"
        );
    }

    #[test]
    fn require_with_a_root_file_checks_the_chain_as_libpq_does() {
        let (_, tls) = settings("postgres://h/x?sslmode=require&sslrootcert=/ca.pem");
        assert_eq!(tls.mode, SslMode::VerifyCa);
        let (_, tls) = settings("postgres://h/x?sslmode=verify-full&sslrootcert=system");
        assert_eq!((tls.mode, tls.root_cert), (SslMode::VerifyFull, None));
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
            root_cert: Some(PathBuf::from("/no/such/ca.pem")),
        };
        let err = missing.connector().err().unwrap_or_default();
        assert!(err.contains("/no/such/ca.pem"), "{err}");
        let dir = std::env::temp_dir().join(format!("stockyard-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = TlsSettings {
            mode: SslMode::VerifyCa,
            root_cert: Some(empty.clone()),
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
