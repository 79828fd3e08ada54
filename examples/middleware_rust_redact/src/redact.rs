//! The plugin's logic, in plain safe Rust: nothing here knows about the C ABI.

/// What an instance does, read once from its config in `create`.
pub struct Redactor {
    /// Words replaced by `replacement` (ASCII case-insensitive substrings).
    pub words: Vec<Vec<u8>>,
    pub replacement: Vec<u8>,
    /// A user message containing one of these is refused.
    pub blocked_words: Vec<Vec<u8>>,
    /// Test hook: `process` panics on a message containing it ("" = off).
    pub panic_on: Vec<u8>,
}

/// The decision for one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The new text and how many words were replaced.
    Rewrite(Vec<u8>, usize),
    /// The blocked word found.
    Reject(Vec<u8>),
}

fn starts_with_ignore_case(text: &[u8], word: &[u8]) -> bool {
    !word.is_empty() && text.len() >= word.len() && text[..word.len()].eq_ignore_ascii_case(word)
}

fn contains_ignore_case(text: &[u8], word: &[u8]) -> bool {
    (0..text.len()).any(|i| starts_with_ignore_case(&text[i..], word))
}

impl Redactor {
    /// `user_stage`: blocked words only apply to what users send.
    pub fn judge(&self, text: &[u8], user_stage: bool) -> Verdict {
        if !self.panic_on.is_empty() && contains_ignore_case(text, &self.panic_on) {
            panic!("redact: panic_on word seen (test hook)");
        }
        if user_stage {
            if let Some(word) = self.blocked_words.iter().find(|w| contains_ignore_case(text, w)) {
                return Verdict::Reject(word.clone());
            }
        }
        let (out, count) = self.replace(text);
        if count == 0 {
            Verdict::Pass
        } else {
            Verdict::Rewrite(out, count)
        }
    }

    /// Left to right, the first word of `words` that matches at a position wins.
    fn replace(&self, text: &[u8]) -> (Vec<u8>, usize) {
        let mut out = Vec::with_capacity(text.len());
        let mut count = 0;
        let mut i = 0;
        while i < text.len() {
            match self.words.iter().find(|w| starts_with_ignore_case(&text[i..], w)) {
                Some(word) => {
                    out.extend_from_slice(&self.replacement);
                    i += word.len();
                    count += 1;
                }
                None => {
                    out.push(text[i]);
                    i += 1;
                }
            }
        }
        (out, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor {
            words: vec![b"secret".to_vec(), b"pin".to_vec()],
            replacement: b"[x]".to_vec(),
            blocked_words: vec![b"forbidden".to_vec()],
            panic_on: Vec::new(),
        }
    }

    #[test]
    fn replaces_every_word_case_insensitively() {
        let v = redactor().judge(b"my SECRET pin, Secret!", true);
        assert_eq!(v, Verdict::Rewrite(b"my [x] [x], [x]!".to_vec(), 3));
    }

    #[test]
    fn passes_text_without_words() {
        assert_eq!(redactor().judge(b"hello", true), Verdict::Pass);
        assert_eq!(redactor().judge(b"", true), Verdict::Pass);
    }

    #[test]
    fn blocks_only_on_the_user_stage() {
        assert_eq!(redactor().judge(b"so FORBIDDEN", true), Verdict::Reject(b"forbidden".to_vec()));
        assert_eq!(redactor().judge(b"so FORBIDDEN", false), Verdict::Pass);
    }
}
