//! A Japanese–English lexicon for theme suggestions: Japanese words read
//! through their English glosses, so that "グラフが固まる" and "charts
//! freeze", "課金" and "billing", "もっさり" and "sluggish" meet.
//!
//! The lexicon is the EDRDG's EDICT (Debian's package `edict`:
//! `/usr/share/edict/edict`, EUC-JP; CC BY-SA 3.0), read once by the
//! service when `voice.lexicon` names it; without it the similarity reads
//! characters and words alone (see [`super::text`]). This module parses
//! the file's lines and looks words up; reading the file is the caller's.
//!
//! What is kept of an entry: its headword, and for a verb or an
//! i-adjective the stem without its inflecting kana (固ま of 固まる, 遅 of
//! 遅い), so an inflected form in a text (固まって, 遅く) is found; the
//! English words of its first sense's first glosses and of any sense
//! marked as computing ("(comp)"), as the similarity's own word terms
//! (stop words dropped, stemmed). A text's CJK run is cut by the longest
//! headword or stem at each place (a stem of one kanji only before its
//! okurigana), as dictionary-based segmenters without a grammar do.

use std::collections::HashMap;

/// Glosses kept of an entry's first sense, and of each computing sense.
const FIRST_GLOSSES: usize = 3;
const COMP_GLOSSES: usize = 2;

/// A gloss of more words than this is an explanation, not a translation.
const MAX_GLOSS_WORDS: usize = 4;

/// The longest headword looked up, in characters.
const MAX_KEY: usize = 10;

/// English words per headword or stem, as the similarity's terms.
#[derive(Debug, Default)]
pub(crate) struct Lexicon {
    words: HashMap<String, Vec<String>>,
    /// The longest key, in characters.
    longest: usize,
}

/// Whether a part of speech inflects by its last kana (a godan or ichidan
/// verb, an i-adjective).
fn inflecting(pos: &str) -> bool {
    pos.split(',').any(|p| p.starts_with("v5") || p == "v1" || p == "adj-i")
}

fn is_kana(c: char) -> bool {
    matches!(c as u32, 0x3041..=0x309F | 0x30A1..=0x30FF)
}

fn is_hiragana(c: char) -> bool {
    matches!(c as u32, 0x3041..=0x309F)
}

/// The leading "(…)" groups of a gloss, and the rest.
fn tags(gloss: &str) -> (Vec<&str>, &str) {
    let mut rest = gloss.trim_start();
    let mut out = Vec::new();
    while let Some(r) = rest.strip_prefix('(') {
        let Some(end) = r.find(')') else { break };
        out.push(&r[..end]);
        rest = r[end + 1..].trim_start();
    }
    (out, rest)
}

/// A gloss without its parenthesised notes and "to " of a verb.
fn clean(gloss: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in gloss.chars() {
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth = (depth - 1).max(0),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let out = out.trim();
    out.strip_prefix("to ").unwrap_or(out).to_string()
}

impl Lexicon {
    /// Parses EDICT lines (already decoded); lines it cannot read are
    /// skipped, as the file's header is. `word` turns an English word into
    /// the similarity's term (none for a stop word).
    pub(crate) fn parse(text: &str, word: impl Fn(&str) -> Option<String>) -> Lexicon {
        let mut lex = Lexicon::default();
        for line in text.lines() {
            let Some((head, rest)) = line.split_once(' ') else { continue };
            if head.is_empty() || !head.chars().all(|c| !c.is_ascii() && c != '　') {
                continue;
            }
            let Some(glosses) = rest.find('/').map(|i| &rest[i..]) else { continue };
            let mut words: Vec<String> = Vec::new();
            let mut sense = 0;
            let mut taken = 0;
            let mut pos = String::new();
            let mut comp = false;
            for g in glosses.split('/').filter(|g| !g.trim().is_empty()) {
                let (t, body) = tags(g);
                if g.trim() == "(P)" || g.starts_with("EntL") {
                    continue;
                }
                if !t.is_empty() {
                    // A gloss opening with tags opens a sense ("(n) (2) …")
                    // unless it is the first.
                    let numbered = t.iter().find_map(|x| x.parse::<usize>().ok());
                    if sense == 0 || numbered.is_some() {
                        sense = numbered.unwrap_or(1);
                        taken = 0;
                        comp = t.contains(&"comp");
                        if sense == 1 {
                            pos = t.first().copied().unwrap_or_default().to_string();
                        }
                    }
                }
                let limit = match sense {
                    1 => FIRST_GLOSSES,
                    _ if comp => COMP_GLOSSES,
                    _ => 0,
                };
                if taken >= limit {
                    continue;
                }
                taken += 1;
                let body = clean(body);
                let ws: Vec<&str> =
                    body.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
                if ws.is_empty() || ws.len() > MAX_GLOSS_WORDS {
                    continue;
                }
                for w in ws {
                    if let Some(t) = word(w)
                        && !words.contains(&t)
                    {
                        words.push(t);
                    }
                }
            }
            if words.is_empty() {
                continue;
            }
            let chars: Vec<char> = head.chars().collect();
            let mut keys = vec![head.to_string()];
            if inflecting(&pos) && chars.len() >= 2 && is_kana(chars[chars.len() - 1]) {
                let stem: String = chars[..chars.len() - 1].iter().collect();
                if !stem.chars().all(is_kana) {
                    keys.push(stem);
                }
            }
            for k in keys {
                let n = k.chars().count();
                // A key of kana alone shorter than three characters is
                // mostly particles and endings.
                if n > MAX_KEY || (k.chars().all(is_hiragana) && n < 3) {
                    continue;
                }
                lex.longest = lex.longest.max(n);
                let e = lex.words.entry(k).or_default();
                for w in &words {
                    if !e.contains(w) {
                        e.push(w.clone());
                    }
                }
            }
        }
        lex
    }

    /// Entries (headwords and stems) in the lexicon.
    pub(crate) fn len(&self) -> usize {
        self.words.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The English words of the dictionary words of a CJK run, by the
    /// longest match at each place.
    pub(crate) fn glosses(&self, run: &[char]) -> Vec<&str> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < run.len() {
            let mut step = 1;
            for n in (1..=self.longest.min(run.len() - i)).rev() {
                // One kanji alone only as a stem before its okurigana.
                if n == 1 && run.get(i + 1).is_none_or(|c| !is_hiragana(*c)) {
                    continue;
                }
                let key: String = run[i..i + n].iter().collect();
                if let Some(ws) = self.words.get(&key) {
                    out.extend(ws.iter().map(String::as_str));
                    step = n;
                    break;
                }
            }
            i += step;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "　？？？ /EDICT, EDICT_SUB(P), EDICT2 Japanese-English Electronic Dictionary Files/\n\
        グラフ /(n) graph/(P)/\n\
        課金 [かきん] /(n,vs) (1) charges/billing/(n,vs) (2) (sl) paying for items in online games/\n\
        固まる [かたまる] /(v5r,vi) (1) to harden/to solidify/(v5r,vi) (2) to become firm/(P)/\n\
        遅い [おそい] /(adj-i) (1) slow/time-consuming/sluggish/(adj-i) (2) late (in the day)/(P)/\n\
        同期 [どうき] /(n,adj-no) (1) same period/(n,vs) (2) (comp) synchronization/synchronism/(P)/\n\
        振込 [ふりこみ] /(n) (1) payment made via bank deposit transfer/(n) (2) (mahj) discarding a tile/\n\
        です /(cop) be/is/\n";

    fn lex() -> Lexicon {
        Lexicon::parse(SAMPLE, |w| Some(w.to_lowercase()))
    }

    fn glosses(text: &str) -> Vec<String> {
        let run: Vec<char> = text.chars().collect();
        lex().glosses(&run).into_iter().map(String::from).collect()
    }

    #[test]
    fn a_word_reads_as_its_first_senses_glosses() {
        assert_eq!(glosses("課金"), ["charges", "billing"]);
        assert_eq!(glosses("グラフ"), ["graph"]);
        // Other senses are left, but one of computing is read.
        assert_eq!(glosses("同期"), ["same", "period", "synchronization", "synchronism"]);
        // An explanation is not a translation.
        assert!(glosses("振込").is_empty());
    }

    #[test]
    fn an_inflected_word_is_found_by_its_stem() {
        assert_eq!(glosses("固まって"), ["harden", "solidify"]);
        assert_eq!(glosses("遅く"), ["slow", "time", "consuming", "sluggish"]);
        // A one-kanji stem only before its okurigana.
        assert!(glosses("遅延").is_empty());
    }

    #[test]
    fn a_run_is_cut_by_the_longest_words() {
        assert_eq!(glosses("グラフが固まる"), ["graph", "harden", "solidify"]);
        // Short kana keys (です) are not looked up.
        assert!(glosses("です").is_empty());
        // Five headwords (振込's gloss explains, です is too short) and
        // two stems.
        assert_eq!(lex().len(), 7);
    }
}
