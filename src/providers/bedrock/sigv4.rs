//! AWS Signature Version 4 for Bedrock requests, computed by the `aws-sigv4` crate (the signer the
//! AWS SDK for Rust uses). Pure: the caller passes the time, and gets back the headers to add.
//!
//! The caller must send exactly the `headers` it passed (they are signed), plus the returned ones;
//! `host` is derived from the URL when not passed. The URL must be the one sent, already
//! percent-encoded (as [`super::request::url`] builds it); the canonical request encodes the path
//! once more, as AWS requires for every service but S3 (`%3A` in a model id is signed as `%253A`).
//! The payload hash goes into the signature only; no `x-amz-content-sha256` header is added
//! (Bedrock does not require one).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SigningSettings, sign as sign_request,
};
use aws_sigv4::sign::v4;
use thiserror::Error;

use crate::secret::Secret;

/// The SigV4 service name of Bedrock Runtime.
pub const SERVICE: &str = "bedrock";

#[derive(Debug, Error)]
pub enum SignError {
    #[error("cannot sign request: url {0:?} has no host")]
    NoHost(String),
    #[error("cannot sign request: {0}")]
    Signer(String),
}

/// Everything a signature depends on.
pub struct SigningInput<'a> {
    pub method: &'a str,
    pub url: &'a str,
    /// Headers that will be sent (name, value), e.g. `content-type`; all of them are signed.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub region: &'a str,
    /// [`SERVICE`] for Bedrock.
    pub service: &'a str,
    pub access_key_id: &'a str,
    pub secret_access_key: &'a Secret<String>,
    /// For temporary credentials (STS, instance roles): sent as `x-amz-security-token`.
    pub session_token: Option<&'a Secret<String>>,
    pub time: SystemTime,
}

/// Returns the headers to add: `x-amz-date`, `authorization`, and `x-amz-security-token` when a
/// session token is given. Header names are lower case.
pub fn sign(input: &SigningInput<'_>) -> Result<Vec<(&'static str, String)>, SignError> {
    // The signer panics on a URL without a host; check first.
    let parsed = url::Url::parse(input.url).map_err(|e| SignError::Signer(e.to_string()))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(SignError::NoHost(input.url.to_string()));
    }
    let identity = Credentials::new(
        input.access_key_id,
        input.secret_access_key.expose().as_str(),
        input.session_token.map(|t| t.expose().clone()),
        None,
        "stockyard",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(input.region)
        .name(input.service)
        .time(input.time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SignError::Signer(e.to_string()))?
        .into();
    let request = SignableRequest::new(
        input.method,
        input.url,
        input.headers.iter().copied(),
        SignableBody::Bytes(input.body),
    )
    .map_err(|e| SignError::Signer(e.to_string()))?;
    let (instructions, _signature) = sign_request(request, &params)
        .map_err(|e| SignError::Signer(e.to_string()))?
        .into_parts();
    let (headers, _query) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// 2015-08-30T12:36:00Z, the time of the AWS SigV4 test suite.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn secret() -> Secret<String> {
        Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string())
    }

    fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// AWS SigV4 test suite, `post-vanilla` (header-signed-request.txt).
    #[test]
    fn matches_the_aws_post_vanilla_vector() {
        let secret = secret();
        let headers = sign(&SigningInput {
            method: "POST",
            url: "https://example.amazonaws.com/",
            headers: &[],
            body: b"",
            region: "us-east-1",
            service: "service",
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: &secret,
            session_token: None,
            time: suite_time(),
        })
        .expect("signs");
        assert_eq!(header(&headers, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&headers, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
            )
        );
        assert_eq!(header(&headers, "x-amz-security-token"), None);
    }

    /// AWS SigV4 test suite, `get-vanilla-with-session-token`.
    #[test]
    fn matches_the_aws_session_token_vector() {
        let secret = secret();
        let token = Secret::new(
            "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267".to_string(),
        );
        let headers = sign(&SigningInput {
            method: "GET",
            url: "https://example.amazonaws.com/",
            headers: &[],
            body: b"",
            region: "us-east-1",
            service: "service",
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: &secret,
            session_token: Some(&token),
            time: suite_time(),
        })
        .expect("signs");
        assert_eq!(
            header(&headers, "x-amz-security-token"),
            Some(token.expose().as_str())
        );
        assert_eq!(
            header(&headers, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date;x-amz-security-token, \
                 Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
            )
        );
    }

    #[test]
    fn bedrock_request_signature_is_deterministic_and_covers_the_body() {
        let secret = secret();
        let url = super::super::request::url(
            &super::super::request::endpoint("us-west-2"),
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            false,
        );
        let input = |body: &'static [u8]| SigningInput {
            method: "POST",
            url: &url,
            headers: &[("content-type", "application/json")],
            body,
            region: "us-west-2",
            service: SERVICE,
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: &secret,
            session_token: None,
            time: suite_time(),
        };
        let a = sign(&input(br#"{"messages":[]}"#)).expect("signs");
        let b = sign(&input(br#"{"messages":[]}"#)).expect("signs");
        let c = sign(&input(br#"{"messages":[{}]}"#)).expect("signs");
        assert_eq!(a, b);
        assert_ne!(header(&a, "authorization"), header(&c, "authorization"));
        let auth = header(&a, "authorization").unwrap_or_default();
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-west-2/bedrock/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature="
        ));
    }

    #[test]
    fn url_without_host_is_an_error_not_a_panic() {
        let secret = secret();
        let result = sign(&SigningInput {
            method: "POST",
            url: "/model/x/converse",
            headers: &[],
            body: b"",
            region: "us-east-1",
            service: SERVICE,
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: &secret,
            session_token: None,
            time: suite_time(),
        });
        assert!(result.is_err());
    }
}
