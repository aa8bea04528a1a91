//! Text similarity for theme suggestions, without a dictionary.
//!
//! A text is first folded: full-width ASCII (Ｅｘｃｅｌ) read as ASCII,
//! half-width katakana (ｴｸｽﾎﾟｰﾄ) as full-width. [`terms`] then cuts it
//! as PostgreSQL's pg_bigm does: Japanese and Chinese runs into character
//! bigrams, Latin text into lower-case words without the commonest English
//! function words, lightly stemmed ("invoices" = "invoiced" = "invoice").
//! The similarity reads [`features`], which refine them:
//! - of a Japanese run, only the bigrams that can carry meaning: not those
//!   starting with a hiragana (particles and endings: "です", "ので",
//!   "が見") nor a katakana or kanji followed by a particle ("ドが"), but
//!   a kanji with its okurigana ("遅い");
//! - each kanji alone, at ¾ weight, so "遅い", "遅く" and "遅延" meet;
//! - a katakana word without its trailing long vowel mark ("サーバー" =
//!   "サーバ");
//! - the consonant skeleton of every katakana word and English word, at a
//!   lower weight, as Japanese borrows words ([`kana_key`],
//!   [`latin_key`]): "エクスポート" and "export" are both "kspt", so a
//!   Japanese item and an English one about the same thing share a term;
//! - the letter trigrams of every English word's stem, at a low weight, so
//!   that a typo ("Serch") still meets its word ([`trigrams`]);
//! - with a lexicon (optional, [`super::lexicon`]), the English glosses of
//!   the dictionary words of a Japanese run, at half weight, so that
//!   Japanese and English texts, and Japanese synonyms, meet.
//!
//! Terms are weighted by TF-IDF, and an item's closeness to a theme is a
//! cosine (see [`super::suggest`]).

use std::collections::HashMap;

use super::lexicon::Lexicon;

/// A term: a word, one or two characters of a CJK run, a skeleton or a
/// letter trigram (these two marked).
pub(crate) type Term = String;

/// The commonest English words, which say nothing about a theme.
const STOP: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been", "before",
    "being", "both", "but", "by", "can", "could", "did", "do", "does", "doesn", "don", "each", "even", "for", "from",
    "had", "has", "hasn", "have", "he", "her", "here", "his", "how", "i", "if", "in", "into", "is", "isn", "it", "its",
    "just", "ll", "me", "more", "most", "my", "no", "not", "now", "of", "on", "only", "or", "other", "our", "out",
    "own", "re", "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "those", "to", "too", "up", "us", "ve", "very", "was", "wasn", "we", "were", "what",
    "when", "where", "which", "while", "who", "why", "will", "with", "won", "would", "you", "your",
];

/// The weight of a kanji on its own, against a bigram's or a word's 1 (¾
/// rather than ½: a kanji alone often carries a word, 課金 and 料金; the
/// figures are in docs/feedback.md).
const KANJI_WEIGHT: f64 = 0.75;

/// The weight of each English word of a Japanese word's glosses (see
/// [`super::lexicon`]): half a word's, as a gloss is a translation of one
/// sense among several (0.5 against 0.3 and 1: docs/feedback.md).
const GLOSS_WEIGHT: f64 = 0.5;

/// The weight of a letter trigram of an English word (see [`trigrams`]):
/// low, as a word gives several and they also meet unrelated words.
const TRIGRAM_WEIGHT: f64 = 0.3;

/// The weight of a loanword's consonant skeleton (see [`kana_key`]).
const KEY_WEIGHT: f64 = 0.3;

/// The script of a character of a CJK run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Hiragana,
    Katakana,
    Kanji,
    /// Hangul.
    Other,
}

fn script(c: char) -> Option<Script> {
    match c as u32 {
        0x3041..=0x309F => Some(Script::Hiragana),
        0x30A1..=0x30FA | 0x30FC..=0x30FF | 0x31F0..=0x31FF => Some(Script::Katakana),
        0x3005 | 0x3007 | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF => Some(Script::Kanji),
        0xAC00..=0xD7AF => Some(Script::Other),
        _ => None,
    }
}

fn is_cjk(c: char) -> bool {
    script(c).is_some()
}

/// The long vowel mark.
const CHOON: char = 'ー';

/// Half-width katakana U+FF66 to U+FF9D, full-width.
const HALF_KATAKANA: &str =
    "ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン";

/// The text with full-width ASCII as ASCII, half-width katakana (and its
/// sound marks ﾞ ﾟ) as full-width, the ideographic space as a space.
pub(crate) fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c as u32 {
            0xFF01..=0xFF5E => out.push(char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)),
            0x3000 => out.push(' '),
            0xFF61 => out.push('。'),
            0xFF62 => out.push('「'),
            0xFF63 => out.push('」'),
            0xFF64 => out.push('、'),
            0xFF65 => out.push('・'),
            0xFF66..=0xFF9D => out.extend(HALF_KATAKANA.chars().nth((c as u32 - 0xFF66) as usize)),
            0xFF9E | 0xFF9F => {
                // ﾞ makes the previous kana voiced (カ → ガ, ウ → ヴ), ﾟ
                // half-voiced (ハ → パ); anywhere else it is dropped.
                let voiced = c as u32 == 0xFF9E;
                let composed = out.chars().last().and_then(|p| match p {
                    'ウ' if voiced => Some('ヴ'),
                    'カ' | 'キ' | 'ク' | 'ケ' | 'コ' | 'サ' | 'シ' | 'ス' | 'セ' | 'ソ' | 'タ' | 'チ' | 'ツ' | 'テ'
                    | 'ト'
                        if voiced =>
                    {
                        char::from_u32(p as u32 + 1)
                    }
                    'ハ' | 'ヒ' | 'フ' | 'ヘ' | 'ホ' => char::from_u32(p as u32 + if voiced { 1 } else { 2 }),
                    _ => None,
                });
                if let Some(x) = composed {
                    out.pop();
                    out.push(x);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// A word without its inflection: a plural's, a past's or a gerund's
/// ending dropped (a doubled last consonant undoubled; "-ies" as "-y").
fn unflect(w: &str) -> String {
    let long = |s: &str| s.chars().count() >= 3;
    if let Some(x) = w.strip_suffix("ies").filter(|x| long(x)) {
        return format!("{x}y");
    }
    if let Some(x) = w.strip_suffix("sses") {
        return format!("{x}ss");
    }
    if let Some(x) =
        w.strip_suffix("es").filter(|x| long(x) && ["s", "x", "z", "ch", "sh"].iter().any(|e| x.ends_with(e)))
    {
        return x.to_string();
    }
    if let Some(x) =
        w.strip_suffix('s').filter(|x| long(x) && !x.ends_with('s') && !x.ends_with('u') && !x.ends_with('i'))
    {
        return x.to_string();
    }
    if let Some(x) =
        w.strip_suffix("ing").or_else(|| w.strip_suffix("ed").filter(|x| !x.ends_with('e'))).filter(|x| long(x))
    {
        let b = x.as_bytes();
        if b.len() >= 2 && b[b.len() - 1] == b[b.len() - 2] && !b"aeioulsz".contains(&b[b.len() - 1]) {
            return x[..x.len() - 1].to_string();
        }
        return x.to_string();
    }
    w.to_string()
}

/// A word's light stem, so that "exports", "exporting" and "export",
/// "invoices", "invoiced" and "invoice", "logged" and "log", "entries"
/// and "entry" meet: the word [`unflect`]ed, then a final "e" dropped.
fn stem(w: &str) -> String {
    let mut out = unflect(w);
    if out.len() > 3 && out.ends_with('e') && !out.ends_with("ee") {
        out.pop();
    }
    out
}

/// Pushes a consonant class unless the key already ends with it (doubled
/// consonants and gemination count once).
fn push_class(key: &mut String, class: &str) {
    for c in class.chars() {
        if !key.ends_with(c) {
            key.push(c);
        }
    }
}

/// The consonant skeleton of a katakana word, as Japanese hears a loanword:
/// vowels, small kana, ッ and ー silent; voicing kept; シ as s, チ and ツ as
/// t, ジ as g (English g is both: ログイン, ページ), ヴ as b, フ as h, ラ行 as
/// r, ウェ/ウィ/ウォ as w.
fn kana_key(word: &[char]) -> String {
    let mut key = String::new();
    for (i, c) in word.iter().enumerate() {
        let class = match c {
            'カ' | 'キ' | 'ク' | 'ケ' | 'コ' => "k",
            'ガ' | 'ギ' | 'グ' | 'ゲ' | 'ゴ' => "g",
            'サ' | 'シ' | 'ス' | 'セ' | 'ソ' | 'ザ' | 'ズ' | 'ゼ' | 'ゾ' => "s",
            'ジ' | 'ヂ' => "g",
            'タ' | 'チ' | 'ツ' | 'テ' | 'ト' => "t",
            'ダ' | 'ヅ' | 'デ' | 'ド' => "d",
            'ナ' | 'ニ' | 'ヌ' | 'ネ' | 'ノ' | 'ン' => "n",
            'ハ' | 'ヒ' | 'フ' | 'ヘ' | 'ホ' => "h",
            'バ' | 'ビ' | 'ブ' | 'ベ' | 'ボ' | 'ヴ' => "b",
            'パ' | 'ピ' | 'プ' | 'ペ' | 'ポ' => "p",
            'マ' | 'ミ' | 'ム' | 'メ' | 'モ' => "m",
            'ラ' | 'リ' | 'ル' | 'レ' | 'ロ' => "r",
            'ワ' => "w",
            'ウ' if matches!(word.get(i + 1), Some('ィ' | 'ェ' | 'ォ')) => "w",
            _ => "",
        };
        push_class(&mut key, class);
    }
    key
}

/// The consonant skeleton of an English word as Japanese would borrow it
/// (see [`kana_key`]): "export" and エクスポート are both "kspt",
/// "dashboard" and ダッシュボード "dsbd". L is r, v is b, f and ph are h,
/// c is s before e/i/y and k elsewhere, x is ks, sh and th are s, ch is
/// t, ti before a vowel s (-tion), j and dg g, m before p/b n; an r, w or
/// h not before a vowel is silent.
fn latin_key(word: &str) -> String {
    let b = word.as_bytes();
    let vowel = |c: Option<&u8>| c.is_some_and(|c| b"aeiouy".contains(c));
    let mut key = String::new();
    let mut i = 0;
    while i < b.len() {
        let (next, after) = (b.get(i + 1), b.get(i + 2));
        let (class, step) = match (b[i], next.copied()) {
            (b'a' | b'e' | b'i' | b'o' | b'u' | b'y', _) => ("", 1),
            (b'c', Some(b'h')) => ("t", 2),
            (b'c', Some(b'k')) => ("k", 2),
            (b'c', Some(b'e' | b'i' | b'y')) => ("s", 1),
            (b'c' | b'k' | b'q', _) => ("k", 1),
            (b'x', _) => ("ks", 1),
            (b's' | b't', Some(b'h')) => ("s", 2),
            (b't', Some(b'i')) if vowel(after) => ("s", 1),
            (b'p', Some(b'h')) => ("h", 2),
            (b'd', Some(b'g')) => ("g", 2),
            (b'g' | b'j', _) => ("g", 1),
            (b'f', _) => ("h", 1),
            (b'h' | b'r' | b'w', _) if !vowel(next) => ("", 1),
            (b'h', _) => ("h", 1),
            (b'r' | b'l', _) => ("r", 1),
            (b'w', _) => ("w", 1),
            (b'v' | b'b', _) => ("b", 1),
            (b's' | b'z', _) => ("s", 1),
            (b'm', Some(b'p' | b'b')) => ("n", 1),
            (b'd', _) => ("d", 1),
            (b'm', _) => ("m", 1),
            (b'n', _) => ("n", 1),
            (b'p', _) => ("p", 1),
            (b't', _) => ("t", 1),
            _ => return String::new(),
        };
        push_class(&mut key, class);
        i += step;
    }
    key
}

/// Skeletons shorter than this say too little.
const MIN_KEY: usize = 3;

/// What marks a skeleton's term, apart from words and bigrams.
const KEY_MARK: char = '~';

/// The term of a skeleton.
fn key_term(key: String) -> Option<Term> {
    (key.len() >= MIN_KEY).then(|| format!("{KEY_MARK}{key}"))
}

/// What marks a letter trigram's term.
const TRIGRAM_MARK: char = '#';

/// The letter trigrams of a word's stem of three letters or more, its ends
/// marked ("serch" and "search" share "rch", "ch$"), at a low weight: a
/// typo or an unstemmed form still meets its word.
fn trigrams(stem: &str) -> Vec<(Term, f64)> {
    let cs: Vec<char> = format!("^{stem}$").chars().collect();
    if cs.len() < 5 {
        return Vec::new();
    }
    cs.windows(3).map(|g| (format!("{TRIGRAM_MARK}{}", g.iter().collect::<String>()), TRIGRAM_WEIGHT)).collect()
}

/// Whether a term means something to a person (a skeleton or a trigram
/// does not).
pub(crate) fn readable(term: &str) -> bool {
    !term.starts_with(KEY_MARK) && !term.starts_with(TRIGRAM_MARK)
}

/// A piece of a folded text: a Latin word or a run of CJK characters.
enum Piece {
    Word(String),
    Run(Vec<char>),
}

fn pieces(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush = |word: &mut String, run: &mut Vec<char>, out: &mut Vec<Piece>| {
        if !word.is_empty() {
            out.push(Piece::Word(std::mem::take(word)));
        }
        if !run.is_empty() {
            out.push(Piece::Run(std::mem::take(run)));
        }
    };
    for c in fold(text).chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                flush(&mut word, &mut Vec::new(), &mut out);
            }
            run.push(c);
        } else if c.is_alphanumeric() {
            if !run.is_empty() {
                flush(&mut String::new(), &mut run, &mut out);
            }
            word.push(c);
        } else {
            flush(&mut word, &mut run, &mut out);
        }
    }
    flush(&mut word, &mut run, &mut out);
    out
}

/// A word as a term, or none for a stop word or a single letter.
fn word_term(word: &str) -> Option<Term> {
    let w = word.to_lowercase();
    (w.chars().count() > 1 && !STOP.contains(&w.as_str())).then(|| stem(&w))
}

/// The terms of `text`, in order (repeated as often as they occur): the
/// bigrams of its CJK runs (a run of one, the character), its words — the
/// plain cut, as pg_bigm's, that [`features`] refines (the tests pin it).
#[cfg(test)]
pub(crate) fn terms(text: &str) -> Vec<Term> {
    let mut out = Vec::new();
    for p in pieces(text) {
        match p {
            Piece::Word(w) => out.extend(word_term(&w)),
            Piece::Run(run) if run.len() == 1 => out.push(run[0].to_string()),
            Piece::Run(run) => out.extend(run.windows(2).map(|w| w.iter().collect::<String>())),
        }
    }
    out
}

/// The weighted features of `text` the similarity reads (see the module).
pub(crate) fn features(text: &str) -> Vec<(Term, f64)> {
    let mut out = Vec::new();
    for p in pieces(text) {
        match p {
            Piece::Word(w) => {
                let Some(t) = word_term(&w) else { continue };
                out.extend(trigrams(&t));
                out.push((t, 1.0));
                let acronym = w.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                let w = w.to_lowercase();
                if w.is_ascii()
                    && !acronym
                    && let Some(k) = key_term(latin_key(&unflect(&w)))
                {
                    out.push((k, KEY_WEIGHT));
                }
            }
            Piece::Run(run) => {
                if let Some(lex) = LEXICON.get() {
                    out.extend(lex.glosses(&run).into_iter().map(|g| (g.to_string(), GLOSS_WEIGHT)));
                }
                run_features(&run, &mut out)
            }
        }
    }
    out
}

/// The process's Japanese–English lexicon, if the service was given one
/// (`BANSO_FEEDBACK_LEXICON`): read once, for every tenant.
static LEXICON: std::sync::OnceLock<Lexicon> = std::sync::OnceLock::new();

/// Reads Japanese runs through `lex` from now on; false if the process
/// already has a lexicon (it keeps the first).
pub(crate) fn use_lexicon(lex: Lexicon) -> bool {
    LEXICON.set(lex).is_ok()
}

/// Whether Japanese runs are read through a lexicon.
pub(crate) fn has_lexicon() -> bool {
    LEXICON.get().is_some()
}

/// Parses EDICT text with this module's English words as its terms.
pub(crate) fn parse_lexicon(edict: &str) -> Lexicon {
    Lexicon::parse(edict, word_term)
}

fn run_features(run: &[char], out: &mut Vec<(Term, f64)>) {
    let kind = |c: char| script(c).unwrap_or(Script::Other);
    // A katakana word's trailing long vowel mark is optional.
    let run: Vec<char> = run
        .iter()
        .enumerate()
        .filter(|(i, c)| !(**c == CHOON && run.get(i + 1).is_none_or(|n| kind(*n) != Script::Katakana)))
        .map(|(_, c)| *c)
        .collect();
    for word in run.split(|c| kind(*c) != Script::Katakana) {
        out.extend(key_term(kana_key(word)).map(|k| (k, KEY_WEIGHT)));
    }
    out.extend(run.iter().filter(|c| kind(**c) == Script::Kanji).map(|c| (c.to_string(), KANJI_WEIGHT)));
    if let [c] = run[..]
        && !matches!(kind(c), Script::Kanji | Script::Hiragana)
    {
        out.push((c.to_string(), 1.0));
    }
    for w in run.windows(2) {
        let (a, b) = (kind(w[0]), kind(w[1]));
        if a != Script::Hiragana && (b != Script::Hiragana || a == Script::Kanji) {
            out.push((w.iter().collect(), 1.0));
        }
    }
}

/// Term counts of a text: its features' weights summed.
pub(crate) fn counts(text: &str) -> HashMap<Term, f64> {
    let mut m = HashMap::new();
    for (t, w) in features(text) {
        *m.entry(t).or_insert(0.0) += w;
    }
    m
}

/// Document frequencies over a corpus, for IDF.
#[derive(Debug, Clone, Default)]
pub(crate) struct Corpus {
    pub docs: f64,
    pub df: HashMap<Term, f64>,
}

impl Corpus {
    #[cfg(test)]
    pub(crate) fn add(&mut self, doc: &HashMap<Term, f64>) {
        self.docs += 1.0;
        for t in doc.keys() {
            *self.df.entry(t.clone()).or_insert(0.0) += 1.0;
        }
    }

    /// ln((1 + N) ÷ (1 + df)) + 1: rare terms weigh more, none weighs 0.
    pub(crate) fn idf(&self, t: &str) -> f64 {
        ((1.0 + self.docs) / (1.0 + self.df.get(t).copied().unwrap_or(0.0))).ln() + 1.0
    }

    /// The TF-IDF vector of raw counts (sub-linear TF: 1 + ln(count) for a
    /// count of at least 1, the count itself below), normalised to length 1.
    pub(crate) fn vector(&self, counts: &HashMap<Term, f64>) -> HashMap<Term, f64> {
        let mut v: HashMap<Term, f64> =
            counts.iter().filter(|(_, c)| **c > 0.0).map(|(t, c)| (t.clone(), tf(*c) * self.idf(t))).collect();
        normalise(&mut v);
        v
    }
}

/// Sub-linear term frequency: 1 + ln(count), linear below 1.
pub(crate) fn tf(count: f64) -> f64 {
    if count >= 1.0 { 1.0 + count.ln() } else { count }
}

pub(crate) fn normalise<K, S>(v: &mut HashMap<K, f64, S>) {
    let n = v.values().map(|x| x * x).sum::<f64>().sqrt();
    if n > 0.0 {
        v.values_mut().for_each(|x| *x /= n);
    }
}

/// The cosine of two unit vectors.
pub(crate) fn cosine(a: &HashMap<Term, f64>, b: &HashMap<Term, f64>) -> f64 {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    small.iter().filter_map(|(t, x)| large.get(t).map(|y| x * y)).sum()
}

/// Whether `text` contains `keyword` (case-insensitive; full-width ASCII
/// as ASCII, half-width katakana as full-width).
pub(crate) fn contains_keyword(text: &str, keyword: &str) -> bool {
    let k = fold(keyword.trim()).to_lowercase();
    !k.is_empty() && fold(text).to_lowercase().contains(&k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_becomes_bigrams_and_english_words() {
        assert_eq!(terms("請求書が見づらい"), ["請求", "求書", "書が", "が見", "見づ", "づら", "らい"]);
        assert_eq!(terms("The CSV exports are failing!"), ["csv", "export", "fail"]);
        assert_eq!(terms("ＣＳＶ出力が遅い"), ["csv", "出力", "力が", "が遅", "遅い"]);
        assert_eq!(terms("a 字"), ["字"]);
        assert!(terms("").is_empty());
    }

    #[test]
    fn similar_texts_are_closer_than_unrelated_ones() {
        let docs = ["請求書の金額が間違っている", "請求書の宛名を変更したい", "ログインできない", "CSV export is slow"];
        let mut corpus = Corpus::default();
        for d in docs {
            corpus.add(&counts(d));
        }
        let v = |t: &str| corpus.vector(&counts(t));
        let q = v("請求書の金額を直したい");
        assert!(cosine(&q, &v(docs[0])) > cosine(&q, &v(docs[2])));
        assert!(cosine(&q, &v(docs[1])) > cosine(&q, &v(docs[3])));
        let e = v("exporting CSV takes forever");
        assert!(cosine(&e, &v(docs[3])) > 0.3, "{}", cosine(&e, &v(docs[3])));
        assert!((cosine(&q, &q) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn keywords_match_case_and_width_insensitively() {
        assert!(contains_keyword("Ｅｘｃｅｌ出力がしたい", "excel"));
        assert!(contains_keyword("SSO please", "sso"));
        assert!(!contains_keyword("anything", "  "));
        assert!(contains_keyword("ｴｸｽﾎﾟｰﾄできない", "エクスポート"));
    }

    #[test]
    fn half_width_katakana_folds_with_its_sound_marks() {
        assert_eq!(fold("ﾛｸﾞｲﾝ出来ない"), "ログイン出来ない");
        assert_eq!(fold("ﾊﾟｽﾜｰﾄﾞ｡ｳﾞ"), "パスワード。ヴ");
        assert_eq!(fold("ﾞｱﾞ"), "ア");
        assert_eq!(fold("Ｅｘｃｅｌ　３"), "Excel 3");
        assert_eq!(terms("ﾛｸﾞｲﾝ"), terms("ログイン"));
    }

    #[test]
    fn english_words_are_lightly_stemmed() {
        let t = |s: &str| terms(s).join(" ");
        assert_eq!(t("invoice invoices invoiced"), "invoic invoic invoic");
        assert_eq!(t("log logged logging logs"), "log log log log");
        assert_eq!(t("entries entry searches search"), "entry entry search search");
        assert_eq!(t("roles role rates rating"), "rol rol rat rat");
        assert_eq!(t("access status class addresses"), "access status class address");
        assert_eq!(t("need speed agreed"), "need speed agreed");
        assert_eq!(t("Please, could you do it?"), "pleas");
    }

    fn has(f: &[(Term, f64)], t: &str) -> Option<f64> {
        f.iter().filter(|x| x.0 == t).map(|x| x.1).reduce(|a, b| a + b)
    }

    #[test]
    fn features_drop_particles_and_keep_kanji_and_okurigana() {
        let f = features("ダッシュボードが遅いです");
        for gone in ["です", "いで", "ドが", "が遅"] {
            assert_eq!(has(&f, gone), None, "{gone} in {f:?}");
        }
        assert_eq!(has(&f, "遅い"), Some(1.0));
        assert_eq!(has(&f, "遅"), Some(KANJI_WEIGHT));
        assert_eq!(has(&f, "ボド"), None, "the mark inside a word stays");
        assert_eq!(has(&f, "ボー"), Some(1.0));
        // The trailing long vowel mark is optional.
        let names = |t: &str| features(t).into_iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(names("サーバー"), names("サーバ"));
        assert_eq!(names("ﾕｰｻﾞｰ"), names("ユーザ"));
        // Words stay words (beside their letter trigrams); a lone kanji counts.
        let readable_names = |t: &str| names(t).into_iter().filter(|n| readable(n)).collect::<Vec<_>>();
        assert_eq!(readable_names("CSV 字"), ["csv", "字"]);
        assert!(features("ですます").is_empty());
    }

    #[test]
    fn a_misspelt_word_meets_its_word_through_trigrams() {
        let grams = |t: &str| features(t).into_iter().filter(|x| !readable(&x.0)).map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(grams("search"), ["#^se", "#sea", "#ear", "#arc", "#rch", "#ch$"]);
        let shared = grams("Serch").into_iter().filter(|g| grams("search").contains(g)).count();
        assert_eq!(shared, 3, "^se, rch, ch$");
        // Too short for trigrams: "ui" is its word alone.
        assert_eq!(features("UI"), [("ui".to_string(), 1.0)]);
        assert!(features("Exports").contains(&("#^ex".to_string(), TRIGRAM_WEIGHT)));
    }

    #[test]
    fn loanwords_meet_their_english_words() {
        let k = |s: &str| kana_key(&s.chars().collect::<Vec<_>>());
        for (ja, en, key) in [
            ("エクスポート", "export", "kspt"),
            ("ダッシュボード", "dashboard", "dsbd"),
            ("ログイン", "login", "rgn"),
            ("パスワード", "password", "pswd"),
            ("モバイル", "mobile", "mbr"),
            ("アカウント", "account", "knt"),
            ("セールスフォース", "salesforce", "srshs"),
            ("サンドボックス", "sandbox", "sndbks"),
            ("トレーニング", "training", "trng"),
            ("パフォーマンス", "performance", "phmns"),
            ("エクセル", "excel", "ksr"),
            ("ウェブフック", "webhook", "wbhk"),
            ("ノーティフィケーション", "notification", "nthksn"),
            ("ダウンロード", "download", "dnrd"),
            ("テンプレート", "template", "tnprt"),
            ("セキュリティ", "security", "skrt"),
            ("ブラウザ", "browser", "brs"),
            ("ストレージ", "storage", "strg"),
            ("ウィジェット", "widget", "wgt"),
            ("インボイス", "invoice", "nbs"),
        ] {
            assert_eq!((k(ja), latin_key(en)), (key.to_string(), key.to_string()), "{ja} {en}");
        }
        // Too short to say anything; not letters at all.
        assert_eq!(key_term(k("ユーザー")), None);
        assert_eq!(latin_key("x2"), "");
        // An acronym is spelled out, not borrowed: it has no skeleton.
        assert!(!features("CSV SFDC").iter().any(|x| x.0.starts_with('~')));
        // Both sides carry the skeleton, at its weight, apart from words.
        let f = features("Exports");
        assert!(f.contains(&("export".to_string(), 1.0)) && f.contains(&("~kspt".to_string(), KEY_WEIGHT)), "{f:?}");
        assert!(features("CSVエクスポート").contains(&("~kspt".to_string(), KEY_WEIGHT)));
        assert!(!features("the").iter().any(|x| x.0.starts_with('~')));
        assert!(!readable("~kspt") && readable("export") && readable("出力"));
    }
}
