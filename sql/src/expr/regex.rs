//! A small backtracking regular-expression matcher for PostgreSQL's `~`
//! operators (POSIX ARE subset): literals, `.`, `^`, `$`, groups `(...)`,
//! alternation `|`, quantifiers `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`,
//! bracket expressions `[a-z]`, `[^...]`, and escapes `\d \w \s \D \W \S`
//! and `\` before any other character. Enough for the patterns clients
//! send (psql builds `^(name.*)$`); anything else is refused as `2201B`.
//!
//! Matching is by backtracking with a step budget ([`REGEX_STEPS_MAX`]), so
//! a pathological pattern fails with `54000` instead of running forever.

use teller_net::{PgError, PgResult, SqlState};

/// Most matcher steps one match may take.
pub const REGEX_STEPS_MAX: usize = 1_000_000;
/// Longest pattern accepted, in characters.
pub const REGEX_PATTERN_CHARS_MAX: usize = 10_000;

const INVALID_REGEX: SqlState = SqlState("2201B");

#[derive(Clone, Debug)]
enum Node {
    Char(char),
    Any,
    Start,
    End,
    Class(Vec<(char, char)>, bool),
    Group(Vec<Vec<Node>>),
    Repeat(Box<Node>, usize, Option<usize>),
}

/// A compiled pattern.
#[derive(Clone, Debug)]
pub struct Regex {
    alternatives: Vec<Vec<Node>>,
    case_insensitive: bool,
}

fn invalid(what: &str) -> PgError {
    PgError::new(INVALID_REGEX, format!("invalid regular expression: {what}"))
}

struct Parser<'a> {
    chars: &'a [char],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn alternatives(&mut self, depth: usize) -> PgResult<Vec<Vec<Node>>> {
        if depth > 100 {
            return Err(invalid("nesting too deep"));
        }
        let mut alts = vec![Vec::new()];
        while let Some(c) = self.peek() {
            match c {
                '|' => {
                    self.at += 1;
                    alts.push(Vec::new());
                }
                ')' => break,
                _ => {
                    let atom = self.atom(depth)?;
                    let atom = self.quantified(atom)?;
                    alts.last_mut()
                        .expect("one alternative at least")
                        .push(atom);
                }
            }
        }
        Ok(alts)
    }

    fn number(&mut self) -> Option<usize> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        self.chars[start..self.at]
            .iter()
            .collect::<String>()
            .parse()
            .ok()
    }

    fn quantified(&mut self, atom: Node) -> PgResult<Node> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => {
                let save = self.at;
                self.at += 1;
                let Some(m) = self.number() else {
                    self.at = save;
                    return Ok(atom);
                };
                let n = if self.peek() == Some(',') {
                    self.at += 1;
                    self.number()
                } else {
                    Some(m)
                };
                if self.peek() != Some('}') {
                    return Err(invalid("bad repetition count"));
                }
                if n.is_some_and(|n| n < m) || m > 1000 {
                    return Err(invalid("invalid repetition count(s)"));
                }
                (m, n)
            }
            _ => return Ok(atom),
        };
        self.at += 1;
        // A lazy quantifier matches the same strings; order does not matter
        // for a yes/no match.
        if self.peek() == Some('?') {
            self.at += 1;
        }
        if matches!(atom, Node::Start | Node::End) {
            return Err(invalid("quantifier operand invalid"));
        }
        Ok(Node::Repeat(Box::new(atom), min, max))
    }

    fn escape(&mut self) -> PgResult<Node> {
        let c = self
            .peek()
            .ok_or_else(|| invalid("invalid escape \\ sequence"))?;
        self.at += 1;
        let digits = vec![('0', '9')];
        let word = vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')];
        let space = vec![(' ', ' '), ('\t', '\r')];
        Ok(match c {
            'd' => Node::Class(digits, false),
            'D' => Node::Class(digits, true),
            'w' => Node::Class(word, false),
            'W' => Node::Class(word, true),
            's' => Node::Class(space, false),
            'S' => Node::Class(space, true),
            'n' => Node::Char('\n'),
            't' => Node::Char('\t'),
            c if c.is_ascii_alphanumeric() => return Err(invalid("invalid escape \\ sequence")),
            c => Node::Char(c),
        })
    }

    fn class(&mut self) -> PgResult<Node> {
        let negated = self.peek() == Some('^');
        if negated {
            self.at += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self
                .peek()
                .ok_or_else(|| invalid("brackets [] not balanced"))?;
            self.at += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                let e = self
                    .peek()
                    .ok_or_else(|| invalid("brackets [] not balanced"))?;
                self.at += 1;
                e
            } else {
                c
            };
            if self.peek() == Some('-') && self.chars.get(self.at + 1).is_some_and(|&n| n != ']') {
                self.at += 1;
                let hi = self
                    .peek()
                    .ok_or_else(|| invalid("brackets [] not balanced"))?;
                self.at += 1;
                if hi < lo {
                    return Err(invalid("invalid character range"));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Node::Class(ranges, negated))
    }

    fn atom(&mut self, depth: usize) -> PgResult<Node> {
        let c = self.peek().expect("called with input left");
        self.at += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '\\' => self.escape()?,
            '[' => self.class()?,
            '(' => {
                // Non-capturing groups read the same.
                if self.peek() == Some('?') && self.chars.get(self.at + 1) == Some(&':') {
                    self.at += 2;
                }
                let alts = self.alternatives(depth + 1)?;
                if self.peek() != Some(')') {
                    return Err(invalid("parentheses () not balanced"));
                }
                self.at += 1;
                Node::Group(alts)
            }
            '*' | '+' | '?' => return Err(invalid("quantifier operand invalid")),
            c => Node::Char(c),
        })
    }
}

impl Regex {
    pub fn new(pattern: &str, case_insensitive: bool) -> PgResult<Regex> {
        let chars: Vec<char> = pattern.chars().collect();
        if chars.len() > REGEX_PATTERN_CHARS_MAX {
            return Err(PgError::new(
                SqlState::PROGRAM_LIMIT_EXCEEDED,
                format!("regular expression longer than {REGEX_PATTERN_CHARS_MAX} characters"),
            ));
        }
        let mut p = Parser {
            chars: &chars,
            at: 0,
        };
        let alternatives = p.alternatives(0)?;
        if p.at != chars.len() {
            return Err(invalid("parentheses () not balanced"));
        }
        Ok(Regex {
            alternatives,
            case_insensitive,
        })
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> PgResult<bool> {
        let chars: Vec<char> = if self.case_insensitive {
            text.chars().flat_map(char::to_lowercase).collect()
        } else {
            text.chars().collect()
        };
        let mut m = Matcher {
            text: &chars,
            steps: 0,
            fold: self.case_insensitive,
        };
        let top = [Node::Group(self.alternatives.clone())];
        for start in 0..=chars.len() {
            if m.seq(&top, start, &mut |_| true)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

struct Matcher<'t> {
    text: &'t [char],
    steps: usize,
    fold: bool,
}

type Cont<'k> = dyn FnMut(usize) -> bool + 'k;

impl Matcher<'_> {
    fn step(&mut self) -> PgResult<()> {
        self.steps += 1;
        if self.steps > REGEX_STEPS_MAX {
            return Err(PgError::new(
                SqlState::PROGRAM_LIMIT_EXCEEDED,
                "regular expression is too complex to match",
            ));
        }
        Ok(())
    }

    fn char_eq(&self, pattern: char, c: char) -> bool {
        if self.fold {
            pattern.to_lowercase().eq(std::iter::once(c))
        } else {
            pattern == c
        }
    }

    /// Matches `nodes` at `at`, then calls `k` with the end position.
    fn seq(&mut self, nodes: &[Node], at: usize, k: &mut Cont<'_>) -> PgResult<bool> {
        self.step()?;
        let Some((first, rest)) = nodes.split_first() else {
            return Ok(k(at));
        };
        match first {
            Node::Char(c) => Ok(at < self.text.len()
                && self.char_eq(*c, self.text[at])
                && self.seq(rest, at + 1, k)?),
            Node::Any => Ok(at < self.text.len() && self.seq(rest, at + 1, k)?),
            Node::Start => Ok(at == 0 && self.seq(rest, at, k)?),
            Node::End => Ok(at == self.text.len() && self.seq(rest, at, k)?),
            Node::Class(ranges, negated) => {
                if at >= self.text.len() {
                    return Ok(false);
                }
                let c = self.text[at];
                let hit = ranges.iter().any(|&(lo, hi)| {
                    (lo <= c && c <= hi)
                        || (self.fold
                            && lo.to_lowercase().eq(hi.to_lowercase())
                            && self.char_eq(lo, c))
                });
                Ok(hit != *negated && self.seq(rest, at + 1, k)?)
            }
            Node::Group(alts) => {
                for alt in alts {
                    let mut chained = alt.clone();
                    chained.extend_from_slice(rest);
                    if self.seq(&chained, at, k)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Node::Repeat(node, min, max) => self.repeat(node, *min, *max, 0, rest, at, k),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn repeat(
        &mut self,
        node: &Node,
        min: usize,
        max: Option<usize>,
        count: usize,
        rest: &[Node],
        at: usize,
        k: &mut Cont<'_>,
    ) -> PgResult<bool> {
        self.step()?;
        // Greedy: one more repetition first, then the rest.
        if max.is_none_or(|m| count < m) {
            let mut ends = Vec::new();
            self.seq(std::slice::from_ref(node), at, &mut |end| {
                ends.push(end);
                false
            })?;
            for end in ends {
                if end == at {
                    continue; // an empty repetition makes no progress
                }
                if self.repeat(node, min, max, count + 1, rest, end, k)? {
                    return Ok(true);
                }
            }
        }
        if count >= min {
            return self.seq(rest, at, k);
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Regex::new(p, false).unwrap().is_match(t).unwrap()
    }

    #[test]
    fn matches_posix_style_patterns() {
        assert!(m("^(t)$", "t"));
        assert!(!m("^(t)$", "tt"));
        assert!(m("^(acc.*)$", "accounts"));
        assert!(!m("^pg_", "public"));
        assert!(m("^pg_", "pg_toast"));
        assert!(m("b+c", "abbbc"));
        assert!(m("a(b|cd)*e", "acdbcde"));
        assert!(!m("a(b|cd)*e", "acdx"));
        assert!(m("^[a-c]{2,3}$", "cab"));
        assert!(!m("^[a-c]{2,3}$", "cabc"));
        assert!(m("^[^0-9]+$", "abc"));
        assert!(m("\\d\\.\\d", "v1.2"));
        assert!(m("colou?r", "color"));
        assert!(m("", "anything"));
        assert!(Regex::new("^ABC", true).unwrap().is_match("abcd").unwrap());
        assert!(Regex::new("(", false).is_err());
        assert!(Regex::new("*a", false).is_err());
        assert!(Regex::new("[a", false).is_err());
        // Catastrophic backtracking is cut off, not run forever.
        let r = Regex::new("(a*)*b", false).unwrap();
        assert!(r.is_match(&"a".repeat(40)).is_err());
    }
}
