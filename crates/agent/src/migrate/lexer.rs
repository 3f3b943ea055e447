//! The tokenizer of keepalived.conf: words, quoted strings, braces and line ends, as
//! keepalived reads them.

use super::notes::Note;

/// A word of the configuration: a bare word or a quoted string (quotes removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Word {
    pub(super) text: String,
    pub(super) quoted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    Word(Word),
    Open,
    Close,
    /// The end of a (logical) line: a statement ends here.
    Eol,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) line: usize,
}

/// Splits keepalived.conf text into words, braces and line ends, as keepalived reads
/// it: `#` and `!` start a comment anywhere outside quotes, a backslash escapes the
/// next character outside quotes and joins the next line when it ends one, `{` and
/// `}` are tokens of their own even when attached to a word.
pub(super) fn tokenize(text: &str) -> (Vec<Token>, Vec<Note>) {
    struct Lexer {
        tokens: Vec<Token>,
        notes: Vec<Note>,
        word: Option<(Word, usize)>,
        line: usize,
    }
    impl Lexer {
        fn push_char(&mut self, c: char, quoted: bool) {
            let line = self.line;
            let (w, _) = self.word.get_or_insert_with(|| {
                (
                    Word {
                        text: String::new(),
                        quoted: false,
                    },
                    line,
                )
            });
            w.text.push(c);
            w.quoted |= quoted;
        }
        fn start_quote(&mut self) {
            let line = self.line;
            let (w, _) = self.word.get_or_insert_with(|| {
                (
                    Word {
                        text: String::new(),
                        quoted: true,
                    },
                    line,
                )
            });
            w.quoted = true;
        }
        fn flush(&mut self) {
            if let Some((w, line)) = self.word.take() {
                self.tokens.push(Token {
                    tok: Tok::Word(w),
                    line,
                });
            }
        }
        fn emit(&mut self, tok: Tok) {
            self.flush();
            self.tokens.push(Token {
                tok,
                line: self.line,
            });
        }
    }

    let mut lx = Lexer {
        tokens: Vec::new(),
        notes: Vec::new(),
        word: None,
        line: 1,
    };
    let mut chars = text.chars().peekable();
    let mut in_comment = false;
    let mut in_quote = false;
    while let Some(c) = chars.next() {
        if c == '\n' {
            if in_quote {
                lx.notes.push(Note {
                    line: lx.line,
                    text: "unterminated quoted string: read up to the end of the line".into(),
                });
                in_quote = false;
            }
            in_comment = false;
            lx.emit(Tok::Eol);
            lx.line += 1;
            continue;
        }
        if in_comment {
            continue;
        }
        if in_quote {
            match c {
                '"' => in_quote = false,
                '\\' => match chars.peek() {
                    Some(&n) if n == '"' || n == '\\' => {
                        chars.next();
                        lx.push_char(n, true);
                    }
                    Some('\n') => {
                        // A continuation inside a string: the string goes on.
                        chars.next();
                        lx.line += 1;
                        skip_indent(&mut chars);
                    }
                    _ => lx.push_char('\\', true),
                },
                _ => lx.push_char(c, true),
            }
            continue;
        }
        match c {
            '#' | '!' => {
                lx.flush();
                in_comment = true;
            }
            '"' => {
                lx.start_quote();
                in_quote = true;
            }
            '\\' => match chars.peek() {
                Some('\n') => {
                    // A line continuation: the statement goes on on the next line.
                    chars.next();
                    lx.flush();
                    lx.line += 1;
                    skip_indent(&mut chars);
                }
                Some(&n) => {
                    chars.next();
                    lx.push_char(n, false);
                }
                None => {}
            },
            '{' => lx.emit(Tok::Open),
            '}' => lx.emit(Tok::Close),
            c if c.is_whitespace() => lx.flush(),
            c => lx.push_char(c, false),
        }
    }
    if in_quote {
        lx.notes.push(Note {
            line: lx.line,
            text: "unterminated quoted string at the end of the file".into(),
        });
    }
    lx.emit(Tok::Eol);
    (lx.tokens, lx.notes)
}

/// Skips the indentation of a continued line (keepalived strips it too).
pub(super) fn skip_indent(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
}
