//! `multipart/form-data` bodies (RFC 7578), read only as far as the proxy must: the fields that
//! route and price a request (`model`, `response_format`, `size`, `n`). The body goes upstream as
//! the client sent it; the one edit ever made is the `model` field's value (an alias renamed),
//! done in place by byte ranges, so a file part is never copied into a parsed form.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MultipartError {
    #[error("content-type must be multipart/form-data with a boundary (got {0:?})")]
    NotMultipart(String),
    #[error("multipart body is malformed: {0}")]
    Malformed(&'static str),
}

/// One part: its name, filename, and where its value sits in the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    /// Byte range of the part's content in the body.
    pub start: usize,
    pub end: usize,
}

/// A parsed form: the body and its parts' positions.
#[derive(Clone, Debug)]
pub struct Form {
    pub body: Bytes,
    pub boundary: String,
    pub parts: Vec<Part>,
}

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let not = || MultipartError::NotMultipart(content_type.to_string());
    let mut pieces = content_type.split(';');
    let mime = pieces.next().unwrap_or_default().trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return Err(not());
    }
    pieces
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or_else(not)
}

impl Form {
    pub fn parse(content_type: &str, body: Bytes) -> Result<Form, MultipartError> {
        let boundary = boundary(content_type)?;
        let delimiter = format!("--{boundary}");
        let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
        let mut parts = Vec::new();
        let Some(first) = finder.find(&body) else {
            return Err(MultipartError::Malformed("no boundary line"));
        };
        let mut at = first + delimiter.len();
        loop {
            let rest = &body[at..];
            if rest.starts_with(b"--") {
                break;
            }
            let Some(after_line) = rest.strip_prefix(b"\r\n") else {
                return Err(MultipartError::Malformed(
                    "boundary line not followed by CRLF",
                ));
            };
            let head_start = at + (rest.len() - after_line.len());
            let Some(head_len) = memchr::memmem::find(&body[head_start..], b"\r\n\r\n") else {
                return Err(MultipartError::Malformed("part headers never end"));
            };
            let head = String::from_utf8_lossy(&body[head_start..head_start + head_len]);
            let start = head_start + head_len + 4;
            let Some(next) = finder.find(&body[start..]) else {
                return Err(MultipartError::Malformed(
                    "a part is not closed by a boundary",
                ));
            };
            let next = start + next;
            // The CRLF before the delimiter belongs to the delimiter.
            let end = if next >= start + 2 && &body[next - 2..next] == b"\r\n" {
                next - 2
            } else {
                return Err(MultipartError::Malformed("boundary not preceded by CRLF"));
            };
            let (name, filename) = disposition(&head).ok_or(MultipartError::Malformed(
                "a part has no content-disposition name",
            ))?;
            parts.push(Part {
                name,
                filename,
                start,
                end,
            });
            at = next + delimiter.len();
        }
        Ok(Form {
            body,
            boundary,
            parts,
        })
    }

    /// The text of the first field called `name` (not a file).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.parts
            .iter()
            .find(|p| p.name == name && p.filename.is_none())
            .and_then(|p| std::str::from_utf8(&self.body[p.start..p.end]).ok())
    }

    pub fn has_file(&self, name: &str) -> bool {
        self.parts
            .iter()
            .any(|p| p.filename.is_some() && (p.name == name || p.name == format!("{name}[]")))
    }

    /// The body with the first text field `name` set to `value` (the rest byte for byte).
    pub fn with_text(&self, name: &str, value: &str) -> Option<Bytes> {
        let part = self
            .parts
            .iter()
            .find(|p| p.name == name && p.filename.is_none())?;
        let mut out = BytesMut::with_capacity(self.body.len() + value.len());
        out.extend_from_slice(&self.body[..part.start]);
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(&self.body[part.end..]);
        Some(out.freeze())
    }
}

/// `name` and `filename` of a part's `content-disposition: form-data` header.
fn disposition(head: &str) -> Option<(String, Option<String>)> {
    let line = head.lines().find(|l| {
        l.split(':')
            .next()
            .is_some_and(|n| n.trim().eq_ignore_ascii_case("content-disposition"))
    })?;
    let value = line.split_once(':')?.1;
    let mut name = None;
    let mut filename = None;
    for param in value.split(';').skip(1) {
        let Some((k, v)) = param.trim().split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v),
            "filename" => filename = Some(v),
            _ => {}
        }
    }
    Some((name?, filename))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (String, Bytes) {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n--\x00\r\n\
--XyZ--\r\n";
        (
            "multipart/form-data; boundary=XyZ".into(),
            Bytes::from(body),
        )
    }

    #[test]
    fn fields_and_files_are_found() {
        let (ct, body) = sample();
        let form = Form::parse(&ct, body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(form.text("model"), Some("whisper-1"));
        assert!(form.has_file("file"));
        assert_eq!(form.text("file"), None);
        let file = &form.parts[1];
        assert_eq!(&form.body[file.start..file.end], b"RIFF\r\n--\x00");
    }

    #[test]
    fn the_model_is_rewritten_in_place() {
        let (ct, body) = sample();
        let form = Form::parse(&ct, body).unwrap_or_else(|e| panic!("{e}"));
        let renamed = form
            .with_text("model", "whisper-large-v3")
            .unwrap_or_default();
        let again = Form::parse(&ct, renamed).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.text("model"), Some("whisper-large-v3"));
        assert!(again.has_file("file"));
    }

    #[test]
    fn json_or_a_missing_boundary_is_refused() {
        assert!(matches!(
            boundary("application/json"),
            Err(MultipartError::NotMultipart(_))
        ));
        assert!(Form::parse("multipart/form-data; boundary=a", Bytes::from("junk")).is_err());
    }
}
