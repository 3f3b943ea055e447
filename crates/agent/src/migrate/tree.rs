//! The tree of keepalived.conf: statements and the blocks that follow them, built
//! from the tokens of [`super::lexer`].

use super::MigrateError;
use super::lexer::{Tok, Token, Word};

/// A statement: the words of one line, and the block that follows it if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Stmt {
    pub(super) line: usize,
    pub(super) words: Vec<Word>,
    pub(super) block: Option<Vec<Stmt>>,
}

impl Stmt {
    /// The keyword (first word), or "" for an anonymous block.
    pub(super) fn key(&self) -> &str {
        self.words.first().map_or("", |w| w.text.as_str())
    }

    /// The `i`th argument (0 is the first word after the keyword).
    pub(super) fn arg(&self, i: usize) -> Option<&str> {
        self.words.get(i + 1).map(|w| w.text.as_str())
    }

    /// The arguments, joined with spaces.
    pub(super) fn rest(&self) -> String {
        self.words
            .iter()
            .skip(1)
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The statement as it was written (quotes put back), for notes.
    pub(super) fn shown(&self) -> String {
        let words: Vec<String> = self
            .words
            .iter()
            .map(|w| {
                if w.quoted {
                    format!("\"{}\"", w.text)
                } else {
                    w.text.clone()
                }
            })
            .collect();
        let mut s = words.join(" ");
        if self.block.is_some() {
            s.push_str(if s.is_empty() { "{ ... }" } else { " { ... }" });
        }
        s
    }

    pub(super) fn items(&self) -> &[Stmt] {
        self.block.as_deref().unwrap_or(&[])
    }
}

/// Builds the tree: a `{` opens the block of the statement on its line, or of the
/// statement just before it when it stands at the start of a line.
pub(super) fn parse(tokens: Vec<Token>) -> Result<Vec<Stmt>, MigrateError> {
    let mut tokens = tokens.into_iter();
    parse_items(&mut tokens, None)
}

pub(super) fn parse_items(
    tokens: &mut std::vec::IntoIter<Token>,
    opened_at: Option<usize>,
) -> Result<Vec<Stmt>, MigrateError> {
    let mut items: Vec<Stmt> = Vec::new();
    let mut current: Option<Stmt> = None;
    while let Some(Token { tok, line }) = tokens.next() {
        match tok {
            Tok::Word(w) => current
                .get_or_insert_with(|| Stmt {
                    line,
                    words: Vec::new(),
                    block: None,
                })
                .words
                .push(w),
            Tok::Eol => items.extend(current.take()),
            Tok::Open => {
                let mut owner = match current.take() {
                    Some(s) => s,
                    None => match items.pop() {
                        Some(prev) if prev.block.is_none() => prev,
                        other => {
                            items.extend(other);
                            Stmt {
                                line,
                                words: Vec::new(),
                                block: None,
                            }
                        }
                    },
                };
                owner.block = Some(parse_items(tokens, Some(line))?);
                items.push(owner);
            }
            Tok::Close => {
                items.extend(current.take());
                return match opened_at {
                    Some(_) => Ok(items),
                    None => Err(MigrateError::Syntax {
                        line,
                        message: "'}' closes no block".into(),
                    }),
                };
            }
        }
    }
    items.extend(current.take());
    match opened_at {
        Some(line) => Err(MigrateError::Syntax {
            line,
            message: "this '{' is never closed".into(),
        }),
        None => Ok(items),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::lexer::tokenize;

    fn words(text: &str) -> Vec<Vec<String>> {
        let tree = parse(tokenize(text).0).unwrap();
        tree.iter()
            .map(|s| s.words.iter().map(|w| w.text.clone()).collect())
            .collect()
    }

    #[test]
    fn comments_quotes_and_escapes_follow_keepalived() {
        assert_eq!(
            words("a b # c\nd \"e # f\" ! g\nauth_pass ab#cd\nx\\ y\n"),
            [
                vec!["a", "b"],
                vec!["d", "e # f"],
                vec!["auth_pass", "ab"],
                vec!["x y"],
            ]
        );
        // Braces are tokens even when attached.
        let tree = parse(tokenize("vrrp_instance X{\n  state BACKUP}\n").0).unwrap();
        assert_eq!(tree[0].key(), "vrrp_instance");
        assert_eq!(tree[0].items()[0].rest(), "BACKUP");
        // One-line blocks; a continuation keeps the statement's first line.
        let tree = parse(tokenize("p { 10.0.0.2 10.0.0.3 }\nq a \\\n   b\nr\n").0).unwrap();
        assert_eq!(tree[0].items()[0].words.len(), 2);
        assert_eq!((tree[1].line, tree[1].rest()), (2, "a b".to_string()));
        assert_eq!(tree[2].line, 4);
    }

    #[test]
    fn a_brace_on_the_next_line_opens_the_previous_statement() {
        let tree = parse(tokenize("global_defs\n{\n router_id x\n}\n\n{\n}\n").0).unwrap();
        assert_eq!(tree.len(), 2);
        assert_eq!(tree[0].items()[0].rest(), "x");
        assert_eq!((tree[1].key(), tree[1].line), ("", 6));
    }

    #[test]
    fn unbalanced_braces_name_their_line() {
        let err = parse(tokenize("a {\n b {\n }\n").0).unwrap_err();
        assert_eq!(
            err,
            MigrateError::Syntax {
                line: 1,
                message: "this '{' is never closed".into()
            }
        );
        let err = parse(tokenize("a {\n}\n}\n").0).unwrap_err();
        assert!(matches!(err, MigrateError::Syntax { line: 3, .. }), "{err}");
    }
}
