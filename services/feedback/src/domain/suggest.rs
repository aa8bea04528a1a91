//! Theme suggestions: an index of a tenant's themes, the closest themes
//! for a text, and candidate themes grown from unthemed items.
//!
//! The index reads the tenant's items and themes as TF-IDF vectors of
//! [`super::text::features`], without the terms that occur in exactly one
//! item and in no theme's own words (a term of one item alone can make
//! nothing alike, it only dilutes). A theme is the centroid of its items' vectors
//! and of its own words' (name, description, keywords), these weighing as
//! much as √(n + 1) of its n items: n items that share few terms add up to
//! a vector about √n long, so the theme's own words keep about the same
//! share of the centroid however many items it has. A text's closeness to
//! a theme is the cosine of its vector and the centroid, the text read
//! only through the terms some theme has (the others cannot speak for any
//! theme; leaving them out changes no ranking, only the scale, so that a
//! minimum similarity means the same for a short text and a rambling one).
//! A suggestion costs a cosine per theme, whatever the number of items.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::text::{Corpus, Term, cosine, counts, normalise, readable};

/// The index of one tenant's themes at one generation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    pub generation: i64,
    corpus: Corpus,
    /// The terms of the themes' own words.
    own: HashSet<Term>,
    /// The terms of some theme's centroid.
    known: HashSet<Term>,
    themes: Vec<(Uuid, String, HashMap<Term, f64>)>,
}

/// An item as the index reads it.
pub(crate) struct Doc<'a> {
    pub text: &'a str,
    pub themes: &'a [Uuid],
}

/// A theme as the index reads it: its id, name, and its own words (name,
/// description, keywords).
pub(crate) struct ThemeDoc<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub words: String,
}

impl Index {
    pub(crate) fn build(generation: i64, docs: &[Doc<'_>], themes: &[ThemeDoc<'_>]) -> Index {
        let mut corpus = Corpus::default();
        let doc_counts: Vec<HashMap<Term, f64>> = docs.iter().map(|d| counts(d.text)).collect();
        for c in &doc_counts {
            corpus.add(c);
        }
        let own_counts: Vec<HashMap<Term, f64>> = themes.iter().map(|t| counts(&t.words)).collect();
        let own: HashSet<Term> = own_counts.iter().flat_map(|c| c.keys().cloned()).collect();
        let vector = |c: &HashMap<Term, f64>| vector(&corpus, &own, c);
        let position: HashMap<Uuid, usize> = themes.iter().enumerate().map(|(i, t)| (t.id, i)).collect();
        let mut sums: Vec<HashMap<Term, f64>> = vec![HashMap::new(); themes.len()];
        let mut sizes = vec![0usize; themes.len()];
        for (d, c) in docs.iter().zip(&doc_counts) {
            let members: Vec<usize> = d.themes.iter().filter_map(|t| position.get(t).copied()).collect();
            if members.is_empty() {
                continue;
            }
            let v = vector(c);
            for i in members {
                sizes[i] += 1;
                for (term, x) in &v {
                    *sums[i].entry(term.clone()).or_insert(0.0) += x;
                }
            }
        }
        for ((sum, c), n) in sums.iter_mut().zip(&own_counts).zip(&sizes) {
            let weight = ((*n + 1) as f64).sqrt();
            for (term, x) in vector(c) {
                *sum.entry(term).or_insert(0.0) += x * weight;
            }
            normalise(sum);
        }
        let known = sums.iter().flat_map(|s| s.keys().cloned()).collect();
        let themes = themes.iter().zip(sums).map(|(t, v)| (t.id, t.name.to_string(), v)).collect();
        Index { generation, corpus, own, known, themes }
    }

    /// The `k` closest themes to `text`, at least `min` similar, best first;
    /// `exclude`d themes left out.
    pub(crate) fn suggest(&self, text: &str, exclude: &[Uuid], k: usize, min: f64) -> Vec<(Uuid, String, f64)> {
        let mut q = self.vector(text);
        q.retain(|t, _| self.known.contains(t));
        normalise(&mut q);
        let mut out: Vec<(Uuid, String, f64)> = self
            .themes
            .iter()
            .filter(|(id, ..)| !exclude.contains(id))
            .map(|(id, name, c)| (*id, name.clone(), cosine(&q, c).min(1.0)))
            .filter(|(.., s)| *s >= min && *s > 0.0)
            .collect();
        out.sort_by(|a, b| b.2.partial_cmp(&a.2).unwrap_or(std::cmp::Ordering::Equal).then(a.0.cmp(&b.0)));
        out.truncate(k);
        out
    }

    /// The unit TF-IDF vector of `text` over the vocabulary.
    pub(crate) fn vector(&self, text: &str) -> HashMap<Term, f64> {
        vector(&self.corpus, &self.own, &counts(text))
    }
}

/// The unit TF-IDF vector of `counts` without the terms of exactly one
/// item that no theme's own words have.
fn vector(corpus: &Corpus, own: &HashSet<Term>, counts: &HashMap<Term, f64>) -> HashMap<Term, f64> {
    let mut c = counts.clone();
    c.retain(|t, _| corpus.df.get(t).is_none_or(|df| *df != 1.0) || own.contains(t));
    corpus.vector(&c)
}

/// A candidate theme: items whose texts are alike.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    pub items: Vec<Uuid>,
    pub top_terms: Vec<String>,
}

/// Groups items (id, unit vector) whose similarity to a group's centroid
/// is at least `threshold`: each item joins the closest group or starts
/// one, then every item is placed again against the final centroids (so
/// the order matters less). Groups of at least `min_items`, largest first.
pub(crate) fn cluster(items: &[(Uuid, HashMap<Term, f64>)], threshold: f64, min_items: usize) -> Vec<Candidate> {
    let mut centroids: Vec<HashMap<Term, f64>> = Vec::new();
    let closest = |centroids: &[HashMap<Term, f64>], v: &HashMap<Term, f64>| {
        centroids
            .iter()
            .enumerate()
            .map(|(i, c)| (i, cosine(v, c)))
            .max_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal))
    };
    let mut sums: Vec<HashMap<Term, f64>> = Vec::new();
    for (_, v) in items {
        match closest(&centroids, v) {
            Some((i, s)) if s >= threshold => {
                for (t, x) in v {
                    *sums[i].entry(t.clone()).or_insert(0.0) += x;
                }
                let mut c = sums[i].clone();
                normalise(&mut c);
                centroids[i] = c;
            }
            _ => {
                sums.push(v.clone());
                centroids.push(v.clone());
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); centroids.len()];
    for (n, (_, v)) in items.iter().enumerate() {
        if let Some((i, s)) = closest(&centroids, v)
            && s >= threshold
        {
            groups[i].push(n);
        }
    }
    let mut out: Vec<Candidate> = groups
        .into_iter()
        .filter(|g| g.len() >= min_items.max(2))
        .map(|g| {
            let mut sum: HashMap<Term, f64> = HashMap::new();
            for n in &g {
                for (t, x) in &items[*n].1 {
                    *sum.entry(t.clone()).or_insert(0.0) += x;
                }
            }
            let mut terms: Vec<(String, f64)> = sum.into_iter().filter(|(t, _)| readable(t)).collect();
            terms.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal).then(a.0.cmp(&b.0)));
            Candidate {
                items: g.iter().map(|n| items[*n].0).collect(),
                top_terms: terms.into_iter().take(5).map(|t| t.0).collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.items.len().cmp(&a.items.len()).then(a.items.first().cmp(&b.items.first())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_suggested_the_theme_of_its_like() {
        let (billing, login) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let docs = [
            Doc { text: "請求書の金額が違う", themes: &[billing] },
            Doc { text: "請求書を再発行したい", themes: &[billing] },
            Doc { text: "ログインできない", themes: &[login] },
            Doc { text: "cannot log in with SSO", themes: &[login] },
            Doc { text: "unrelated words entirely", themes: &[] },
        ];
        let themes = [
            ThemeDoc { id: billing, name: "請求書", words: "請求書 invoice".into() },
            ThemeDoc { id: login, name: "ログイン", words: "ログイン login".into() },
        ];
        let index = Index::build(7, &docs, &themes);
        let s = index.suggest("請求書の宛名を直したい", &[], 3, 0.05);
        assert_eq!(s[0].0, billing, "{s:?}");
        assert_eq!(index.suggest("SSO login fails", &[], 3, 0.05)[0].0, login);
        assert!(index.suggest("請求書", &[billing], 3, 0.05).iter().all(|x| x.0 != billing));
        assert!(index.suggest("zzz", &[], 3, 0.05).is_empty());
    }

    #[test]
    fn a_term_of_one_item_alone_is_not_read() {
        let docs = [
            Doc { text: "export slow", themes: &[] },
            Doc { text: "export broken zanzibar", themes: &[] },
            Doc { text: "login", themes: &[] },
        ];
        let themes = [ThemeDoc { id: Uuid::from_u128(1), name: "Login", words: "login quixotic".into() }];
        let index = Index::build(0, &docs, &themes);
        let v = index.vector("export zanzibar quixotic unseen");
        // "export" is in two items, "quixotic" a theme's word, "unseen" in
        // none (kept: a text's own word); "zanzibar" is in one item only.
        assert!(v.contains_key("export") && v.contains_key("quixotic") && v.contains_key("unseen"), "{v:?}");
        assert!(!v.contains_key("zanzibar"), "{v:?}");
    }

    #[test]
    fn a_text_is_read_through_the_terms_some_theme_has() {
        let billing = Uuid::from_u128(1);
        let docs = [
            Doc { text: "請求書の金額が違う", themes: &[billing] },
            Doc { text: "請求書を再発行したい", themes: &[billing] },
            Doc { text: "全然関係ない話です", themes: &[] },
            Doc { text: "全然関係ない話でした", themes: &[] },
        ];
        let themes = [ThemeDoc { id: billing, name: "請求", words: "請求書".into() }];
        let index = Index::build(0, &docs, &themes);
        let plain = index.suggest("請求書の金額", &[], 1, 0.0)[0].2;
        let padded = index.suggest("請求書の金額、全然関係ない話", &[], 1, 0.0)[0].2;
        assert!((plain - padded).abs() < 1e-9, "{plain} vs {padded}");
        assert!(index.suggest("全然関係ない話", &[], 1, 0.0).is_empty());
    }

    #[test]
    fn a_themes_own_words_keep_their_share_as_items_pile_up() {
        let theme = Uuid::from_u128(1);
        let texts: Vec<String> =
            (0..40).map(|i| format!("amount wrong customer{} customer{}", i % 20, i % 20)).collect();
        let weight = |n: usize| {
            let docs: Vec<Doc<'_>> =
                texts.iter().take(n).map(|t| Doc { text: t, themes: std::slice::from_ref(&theme) }).collect();
            let index = Index::build(0, &docs, &[ThemeDoc { id: theme, name: "Billing", words: "billing".into() }]);
            index.themes[0].2.get("bill").copied().unwrap_or(0.0)
        };
        let (few, many) = (weight(4), weight(40));
        assert!(few > 0.3 && many > 0.3, "{few} {many}");
        assert!(many > few / 2.0, "{few} {many}");
    }

    #[test]
    fn an_english_text_finds_a_theme_of_japanese_loanwords() {
        let (export, login) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let docs = [
            Doc { text: "CSVエクスポートが遅い", themes: &[export] },
            Doc { text: "エクスポートしたファイルが文字化けする", themes: &[export] },
            Doc { text: "パスワードを忘れた", themes: &[login] },
            Doc { text: "パスワードの再設定ができない", themes: &[login] },
            Doc { text: "The export is slow", themes: &[] },
            Doc { text: "I forgot my password", themes: &[] },
        ];
        let themes = [
            ThemeDoc { id: export, name: "出力", words: "データ出力".into() },
            ThemeDoc { id: login, name: "ログイン", words: "ログイン".into() },
        ];
        let index = Index::build(0, &docs, &themes);
        assert_eq!(index.suggest("The export is slow", &[], 1, 0.0)[0].0, export);
        assert_eq!(index.suggest("I forgot my password", &[], 1, 0.0)[0].0, login);
    }

    #[test]
    fn candidates_show_readable_terms() {
        let index = Index::build(0, &[], &[]);
        let texts = ["dashboard export", "dashboard export slow", "dashboard export broken"];
        let items: Vec<(Uuid, HashMap<Term, f64>)> =
            texts.iter().enumerate().map(|(i, t)| (Uuid::from_u128(i as u128), index.vector(t))).collect();
        let c = cluster(&items, 0.3, 2);
        assert_eq!(c[0].items.len(), 3);
        assert!(c[0].top_terms.iter().all(|t| readable(t)), "{:?}", c[0].top_terms);
        assert!(c[0].top_terms.contains(&"dashboard".to_string()), "{:?}", c[0].top_terms);
    }

    #[test]
    fn alike_items_cluster() {
        let index = Index::build(0, &[], &[]);
        let texts = [
            "CSVの出力が遅い",
            "CSV出力が遅すぎる",
            "CSVの出力に時間がかかる",
            "ログインできない",
            "ログインできません",
        ];
        let items: Vec<(Uuid, HashMap<Term, f64>)> =
            texts.iter().enumerate().map(|(i, t)| (Uuid::from_u128(i as u128), index.vector(t))).collect();
        let c = cluster(&items, 0.3, 2);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].items.len(), 3);
        assert!(c[0].top_terms.iter().any(|t| t == "csv" || t == "出力"), "{:?}", c[0].top_terms);
        assert_eq!(c[1].items.len(), 2);
    }
}
