//! Delegation path patterns, matched as python-tuf does: the target path and the pattern are
//! split on `/`, must have the same number of segments, and each segment matches with Python's
//! `fnmatch.fnmatchcase` (`*`, `?`, `[seq]`, `[!seq]`). So `*` never crosses a `/`.

/// Whether `target` matches the delegation path pattern `pattern`.
pub(crate) fn path_matches(target: &str, pattern: &str) -> bool {
    let t: Vec<&str> = target.split('/').collect();
    let p: Vec<&str> = pattern.split('/').collect();
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| fnmatchcase(t, p))
}

enum Token {
    Star,
    Any,
    Literal(char),
    Class { negated: bool, items: Vec<(char, char)> },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Star => true,
            Token::Any => true,
            Token::Literal(l) => *l == c,
            Token::Class { negated, items } => items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated,
        }
    }
}

fn tokenize(pattern: &str) -> Vec<Token> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            '*' => {
                if !matches!(out.last(), Some(Token::Star)) {
                    out.push(Token::Star);
                }
            }
            '?' => out.push(Token::Any),
            '[' => {
                // Find the closing `]` as fnmatch.translate does: a `]` right after `[` or
                // `[!` is a member, not the end.
                let mut j = i;
                if j < p.len() && p[j] == '!' {
                    j += 1;
                }
                if j < p.len() && p[j] == ']' {
                    j += 1;
                }
                while j < p.len() && p[j] != ']' {
                    j += 1;
                }
                if j >= p.len() {
                    out.push(Token::Literal('['));
                    continue;
                }
                let mut body = &p[i..j];
                i = j + 1;
                let negated = body.first() == Some(&'!');
                if negated {
                    body = &body[1..];
                }
                let mut items = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        // A reversed range matches nothing, as in Python.
                        items.push((body[k], body[k + 2]));
                        k += 3;
                    } else {
                        items.push((body[k], body[k]));
                        k += 1;
                    }
                }
                out.push(Token::Class { negated, items });
            }
            c => out.push(Token::Literal(c)),
        }
    }
    out
}

/// Python's `fnmatch.fnmatchcase`: the whole name must match. Linear-time greedy matching with
/// one backtrack point, which is exact because every token but `*` matches exactly one char.
fn fnmatchcase(name: &str, pattern: &str) -> bool {
    let tokens = tokenize(pattern);
    let name: Vec<char> = name.chars().collect();
    let (mut n, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                star = Some((t, n));
                t += 1;
            }
            Some(tok) if tok.matches(name[n]) => {
                n += 1;
                t += 1;
            }
            _ => match star {
                Some((st, sn)) => {
                    t = st + 1;
                    n = sn + 1;
                    star = Some((st, sn + 1));
                }
                None => return false,
            },
        }
    }
    tokens[t..].iter().all(|tok| matches!(tok, Token::Star))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_does_not_cross_slash() {
        assert!(path_matches("a.txt", "*"));
        assert!(!path_matches("dir/a.txt", "*"));
        assert!(path_matches("dir/a.txt", "*/*"));
        assert!(path_matches("simple/demo/index.html", "simple/*/index.html"));
        assert!(!path_matches("simple/demo/x/index.html", "simple/*/index.html"));
        assert!(path_matches("files/ab/x.whl", "files/*/*.whl"));
        assert!(!path_matches("files/ab/x.tar.gz", "files/*/*.whl"));
    }

    #[test]
    fn fnmatch_features() {
        assert!(fnmatchcase("", ""));
        assert!(fnmatchcase("", "*"));
        assert!(!fnmatchcase("", "?"));
        assert!(fnmatchcase("abc", "a?c"));
        assert!(fnmatchcase("abc", "a*"));
        assert!(fnmatchcase("aaab", "a*a*b"));
        assert!(!fnmatchcase("aaa", "a*a*b"));
        assert!(fnmatchcase("b1", "[abc][0-9]"));
        assert!(!fnmatchcase("d1", "[abc][0-9]"));
        assert!(fnmatchcase("d", "[!abc]"));
        assert!(!fnmatchcase("a", "[!abc]"));
        assert!(fnmatchcase("]", "[]]"));
        assert!(fnmatchcase("[x", "[x"));
        assert!(fnmatchcase("-", "[a-]"));
        assert!(!fnmatchcase("b", "[z-a]"));
        assert!(!fnmatchcase("ABC", "abc"));
        assert!(fnmatchcase("é", "?"));
        assert!(!fnmatchcase(&"a".repeat(40), &format!("{}b", "a*".repeat(20))));
    }
}
