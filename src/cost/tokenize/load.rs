//! The two vocabularies the proxy counts in, embedded in the binary, each made ready (hash
//! table and pre-tokenizer) on first use. The token bytes are used where they lie in the
//! binary's read-only data, never copied; data/tokenizers/ holds them and data/README.md says
//! where they come from. A test keeps them equal to the reference tokenizer's.

use std::sync::LazyLock;

use super::encoding::Encoding;
use super::split::{CL100K_PATTERNS, O200K_PATTERNS};

static CL100K_BLOB: &[u8] = include_bytes!("../../../data/tokenizers/cl100k_base.bin");
static O200K_BLOB: &[u8] = include_bytes!("../../../data/tokenizers/o200k_base.bin");

static CL100K: LazyLock<Encoding> = LazyLock::new(|| Encoding::new(CL100K_BLOB, &CL100K_PATTERNS));
static O200K: LazyLock<Encoding> = LazyLock::new(|| Encoding::new(O200K_BLOB, &O200K_PATTERNS));

/// cl100k_base: the GPT-4, GPT-3.5 and embedding models.
pub fn cl100k() -> &'static Encoding {
    &CL100K
}

/// o200k_base: every newer OpenAI model, and the stand-in for tokenizers that are not public.
pub fn o200k() -> &'static Encoding {
    &O200K
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// What data/tokenizers/ should hold for `tokenizer`: each token's length in one byte, then
    /// its bytes, in id order (an id is tiktoken's rank).
    fn blob_of(tokenizer: &bpe_openai::Tokenizer) -> Vec<u8> {
        let bpe = &tokenizer.bpe;
        let mut blob = Vec::new();
        for id in 0..bpe.num_tokens() as u32 {
            let token = bpe.token_bytes(id);
            blob.push(u8::try_from(token.len()).expect("a token of at most 255 bytes"));
            blob.extend_from_slice(token);
        }
        blob
    }

    fn references() -> [(&'static str, &'static [u8], &'static bpe_openai::Tokenizer); 2] {
        [
            ("cl100k_base", CL100K_BLOB, bpe_openai::cl100k_base()),
            ("o200k_base", O200K_BLOB, bpe_openai::o200k_base()),
        ]
    }

    #[test]
    fn the_committed_vocabularies_are_the_reference_tokenizers() {
        for (name, committed, reference) in references() {
            // Compared without printing: a mismatch would print megabytes.
            assert!(
                committed == blob_of(reference).as_slice(),
                "data/tokenizers/{name}.bin differs from bpe-openai's {name}; rewrite it with \
                 STOCKYARD_WRITE_VOCAB=1 cargo test --lib write_vocabularies -- --ignored"
            );
        }
        assert_eq!(cl100k().vocab().len(), 100_256);
        assert_eq!(o200k().vocab().len(), 199_998);
        assert!(cl100k().splitter().compiled() && o200k().splitter().compiled());
    }

    /// Writes data/tokenizers/ from bpe-openai, for a new version of it. Ignored, and a no-op
    /// without the variable, so that a run of the ignored tests does not write by accident.
    #[test]
    #[ignore = "writes data/tokenizers/; run with STOCKYARD_WRITE_VOCAB=1"]
    fn write_vocabularies() {
        if std::env::var_os("STOCKYARD_WRITE_VOCAB").is_none() {
            eprintln!("STOCKYARD_WRITE_VOCAB is not set; nothing written");
            return;
        }
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/tokenizers");
        std::fs::create_dir_all(&folder).unwrap();
        for (name, _, reference) in references() {
            let path = folder.join(format!("{name}.bin"));
            let blob = blob_of(reference);
            // Left alone when equal: a new modification time would rebuild the crate.
            if std::fs::read(&path).ok().as_deref() == Some(blob.as_slice()) {
                eprintln!("{}: unchanged", path.display());
            } else {
                std::fs::write(&path, &blob).unwrap();
                eprintln!("{}: written, {} bytes", path.display(), blob.len());
            }
        }
    }
}
