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

    /// Also the way to write data/tokenizers/ for a new version of bpe-openai: with
    /// `STOCKYARD_WRITE_VOCAB=1`, a file that differs is rewritten (and the test still fails, so
    /// a run that wrote is never taken for a pass).
    #[test]
    fn the_committed_vocabularies_are_the_reference_tokenizers() {
        let write = std::env::var_os("STOCKYARD_WRITE_VOCAB").is_some();
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/tokenizers");
        for (name, committed, reference) in references() {
            let expected = blob_of(reference);
            if write && committed != expected.as_slice() {
                std::fs::create_dir_all(&folder).unwrap();
                std::fs::write(folder.join(format!("{name}.bin")), &expected).unwrap();
            }
            // Compared without printing: a mismatch would print megabytes.
            assert!(
                committed == expected.as_slice(),
                "data/tokenizers/{name}.bin differs from bpe-openai's {name}{}",
                if write {
                    "; written now, build and run again"
                } else {
                    "; rewrite it with STOCKYARD_WRITE_VOCAB=1 cargo test --lib \
                     the_committed_vocabularies_are_the_reference_tokenizers"
                }
            );
        }
        assert_eq!(cl100k().vocab().len(), 100_256);
        assert_eq!(o200k().vocab().len(), 199_998);
        assert!(cl100k().splitter().compiled() && o200k().splitter().compiled());
    }

    /// What a loaded vocabulary adds to the heap: its hash table of token offsets, about a
    /// megabyte (the token bytes stay in the binary). The crate this replaced took 67 MB.
    #[test]
    fn a_loaded_vocabulary_keeps_a_few_megabytes_on_the_heap() {
        let o200k_bytes = o200k().vocab().heap_bytes();
        assert!(
            o200k_bytes < 3 << 19,
            "o200k_base holds {o200k_bytes} bytes"
        );
        let cl100k_bytes = cl100k().vocab().heap_bytes();
        assert!(
            cl100k_bytes < 3 << 18,
            "cl100k_base holds {cl100k_bytes} bytes"
        );
    }
}
