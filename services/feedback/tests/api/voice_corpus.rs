//! Theme suggestions against a corpus with known themes
//! (tests/corpus/voice.tsv: 252 items of B2B SaaS feedback, 156 Japanese
//! and 96 English, 21 in each of 12 themes; tests/corpus/themes.tsv: each
//! theme's name and one-line description, no keywords), through the API:
//! every item recorded, candidate themes grown from them while none is
//! themed, then the first 4 items of each theme put in it by hand and
//! every other item asked for suggestions; then the same on a fresh
//! server with the last 4 items of each theme as the seeds (a second
//! split, so that the figure is not one choice of seeds'). `--nocapture`
//! prints the accuracy per language and per theme (docs/feedback.md,
//! "Theme suggestions", records the figures).

use std::collections::{BTreeMap, HashMap};

use banso_proto::feedback as pb;

use crate::common::*;

const THEMES: &str = include_str!("../corpus/themes.tsv");
const ITEMS: &str = include_str!("../corpus/voice.tsv");

/// Items of each theme put in it by hand before asking (≈ 20%).
const SEEDS: usize = 4;

/// The minimum similarity the tenant sets: a cosine against a theme's
/// centroid runs low (a centroid spreads over every term of its items), so
/// the default 0.2 would hide most right suggestions (see the printout).
const MIN_SIMILARITY: f64 = 0.05;

/// The bar: suggestions put this share of the items in their
/// known theme. With the Japanese–English lexicon (`BANSO_TEST_LEXICON`,
/// as `.ci/run` sets it) the top suggestion meets it (80.4% and 81.9%);
/// without, the top three do and the top one alone (79.4% on both
/// splits, docs/feedback.md) is held to a regression floor.
const REQUIRED: f64 = 0.80;
const TOP_ONE_FLOOR: f64 = 0.78;

/// Which items of each theme are its seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Seeds {
    First,
    Last,
}

fn rows(tsv: &str) -> Vec<Vec<&str>> {
    tsv.lines().skip(1).filter(|l| !l.trim().is_empty()).map(|l| l.split('\t').collect()).collect()
}

fn department(theme: &str) -> pb::Department {
    match theme {
        "billing" => pb::Department::Billing,
        "onboarding" => pb::Department::Cs,
        "sso" | "api" | "salesforce" | "retention" => pb::Department::Support,
        _ => pb::Department::Product,
    }
}

/// Hits and asks, per key.
#[derive(Default)]
struct Tally(BTreeMap<String, (usize, usize)>);

impl Tally {
    fn add(&mut self, key: &str, hit: bool) {
        let e = self.0.entry(key.to_string()).or_default();
        e.0 += usize::from(hit);
        e.1 += 1;
    }

    fn share(&self, key: &str) -> f64 {
        self.0.get(key).map_or(0.0, |(h, n)| *h as f64 / *n as f64)
    }

    fn print(&self, what: &str) {
        for (k, (h, n)) in &self.0 {
            println!("  {what} {k:<14} {h:>3}/{n:<3} {:5.1}%", 100.0 * *h as f64 / *n as f64);
        }
    }
}

#[tokio::test]
async fn suggestions_put_the_corpus_in_its_known_themes() {
    let lexicon = lexicon();
    println!("lexicon: {}", lexicon.as_deref().unwrap_or("none"));
    let top_one = if lexicon.is_some() { REQUIRED } else { TOP_ONE_FLOOR };
    for seeds in [Seeds::First, Seeds::Last] {
        let (top, three) = measure(seeds).await;
        let (t1, t3) = (top.share("all"), three.share("all"));
        assert!(t1 >= top_one, "{seeds:?} seeds: top suggestion right for {:.1}%", 100.0 * t1);
        assert!(t3 >= REQUIRED, "{seeds:?} seeds: known theme among the suggestions for {:.1}%", 100.0 * t3);
    }
}

/// Records the corpus on a fresh server, seeds each theme, asks for the
/// rest: (top suggestion right, known theme among the top three).
async fn measure(seeds: Seeds) -> (Tally, Tally) {
    let app = spawn().await;
    let mut v = voice(&app);
    let accounts: Vec<_> =
        ["Asahi", "Borealis", "Chiyoda", "Delta", "Enoshima"].iter().map(|n| account(n, "saas")).collect();
    for a in &accounts {
        publish_account(&app, TENANT, a).await;
    }
    settle(&app, TENANT).await;
    v.update_voice_settings(pb::UpdateVoiceSettingsRequest {
        settings: Some(pb::VoiceSettings { min_similarity: Some(MIN_SIMILARITY), ..Default::default() }),
        update_mask: Some(pbjson_types::FieldMask { paths: vec!["min_similarity".into()] }),
    })
    .await
    .unwrap();

    let mut theme_ids: HashMap<String, String> = HashMap::new();
    for t in rows(THEMES) {
        let created = create_theme(&mut v, pb::Theme { description: t[2].into(), ..theme(t[1]) }).await;
        theme_ids.insert(t[0].to_string(), created.id);
    }
    let corpus = rows(ITEMS);
    assert!(corpus.len() >= 240, "{} items", corpus.len());
    // (item id, theme key, language, text), in the corpus's order.
    let mut items: Vec<(String, String, String, &str)> = Vec::new();
    for (n, row) in corpus.iter().enumerate() {
        let (key, lang, text) = (row[0], row[1], row[2]);
        assert!(theme_ids.contains_key(key), "line {}: no theme {key}", n + 2);
        let severity = 1 + (n % 5) as i32;
        let created = create_item(&mut v, item(&accounts[n % accounts.len()], text, department(key), severity)).await;
        assert!(created.theme_ids.is_empty(), "no keywords, no theme: {text}");
        items.push((created.id, key.to_string(), lang.to_string(), text));
    }
    let key_of: HashMap<&str, &str> = items.iter().map(|(id, k, ..)| (id.as_str(), k.as_str())).collect();

    // Candidate themes while nothing is themed: alike items, mostly of one
    // known theme each.
    let candidates = v
        .suggest_candidate_themes(pb::SuggestCandidateThemesRequest { max_candidates: 10, min_items: 3 })
        .await
        .unwrap()
        .into_inner()
        .candidates;
    println!("candidate themes before any item is themed:");
    let purity: Vec<f64> = candidates
        .iter()
        .map(|c| {
            let mut by: BTreeMap<&str, usize> = BTreeMap::new();
            for i in &c.item_ids {
                *by.entry(key_of[i.as_str()]).or_default() += 1;
            }
            let (top, n) = by.iter().max_by_key(|x| *x.1).map(|(k, n)| (*k, *n)).unwrap_or(("-", 0));
            println!("  {:>2} items, {n} {top}, terms {:?}, accounts {}", c.item_ids.len(), c.top_terms, c.accounts);
            n as f64 / c.item_ids.len() as f64
        })
        .collect();
    assert!(candidates.len() >= 5, "{candidates:?}");
    assert!(purity[0] >= 0.7, "the largest candidate is {:.0}% one theme", 100.0 * purity[0]);
    let pure = purity.iter().filter(|p| **p >= 0.7).count();
    assert!(pure >= 5, "{pure} of {} candidates are at least 70% one theme", purity.len());

    // The seeds, by hand.
    let mut size: HashMap<&str, usize> = HashMap::new();
    for (_, key, ..) in &items {
        *size.entry(key.as_str()).or_default() += 1;
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut asked = Vec::new();
    for (id, key, lang, text) in &items {
        let n = seen.entry(key.as_str()).or_default();
        *n += 1;
        let seed = match seeds {
            Seeds::First => *n <= SEEDS,
            Seeds::Last => *n > size[key.as_str()] - SEEDS,
        };
        if seed {
            v.assign_theme(pb::AssignThemeRequest { item_id: id.clone(), theme_id: theme_ids[key].clone() })
                .await
                .unwrap();
        } else {
            asked.push((id, key, lang, text));
        }
    }

    // Every other item: is its known theme the top suggestion, among the
    // three?
    let names: HashMap<&str, &str> = theme_ids.iter().map(|(k, id)| (id.as_str(), k.as_str())).collect();
    let (mut top, mut three, mut by_theme) = (Tally::default(), Tally::default(), Tally::default());
    let mut above_default = 0;
    let mut misses = Vec::new();
    for (id, key, lang, text) in &asked {
        let s = v
            .suggest_themes(pb::SuggestThemesRequest {
                item_id: (*id).clone(),
                max_suggestions: 3,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .suggestions;
        assert!(s.iter().all(|x| x.similarity >= MIN_SIMILARITY && x.similarity <= 1.0), "{s:?}");
        assert!(s.windows(2).all(|w| w[0].similarity >= w[1].similarity), "{s:?}");
        let want = &theme_ids[*key];
        let hit = s.first().is_some_and(|x| &x.theme_id == want);
        for k in ["all", lang.as_str()] {
            top.add(k, hit);
            three.add(k, s.iter().any(|x| &x.theme_id == want));
        }
        by_theme.add(key, hit);
        above_default += usize::from(hit && s[0].similarity >= 0.2);
        if !hit {
            let got =
                s.first().map_or("-".to_string(), |x| format!("{} {:.3}", names[x.theme_id.as_str()], x.similarity));
            misses.push(format!("[{key}] {text} -> {got}"));
        }
    }
    println!(
        "{seeds:?} {SEEDS} items of each theme as seeds; top suggestion = known theme, {} items asked:",
        asked.len()
    );
    top.print("top-1");
    three.print("top-3");
    by_theme.print("top-1");
    println!(
        "  right and at least 0.2 similar (the default minimum): {above_default}/{} {:.1}%",
        asked.len(),
        100.0 * above_default as f64 / asked.len() as f64
    );
    println!("misses:");
    for m in &misses {
        println!("  {m}");
    }
    app.stop().await.unwrap();
    (top, three)
}

/// The tenant's suggestion index, once built, takes in new items, new
/// links and reworded themes (it catches up in place, not rebuilt).
#[tokio::test]
async fn the_index_keeps_step_with_items_links_and_themes() {
    let app = spawn().await;
    let mut v = voice(&app);
    let a = account("Asahi", "saas");
    publish_account(&app, TENANT, &a).await;
    settle(&app, TENANT).await;
    let billing = create_theme(&mut v, pb::Theme { description: "請求書 invoice".into(), ..theme("Billing") }).await;
    let login = create_theme(&mut v, pb::Theme { description: "ログイン login".into(), ..theme("Login") }).await;
    let mut old = Vec::new();
    for text in ["請求書の金額が違う", "ログインできない", "hippo river", "hippo lake"] {
        old.push(create_item(&mut v, item(&a, text, pb::Department::Product, 3)).await);
    }
    let suggest = async |v: &mut Voice, text: &str| {
        v.suggest_themes(pb::SuggestThemesRequest { text: text.into(), max_suggestions: 3, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .suggestions
            .into_iter()
            .map(|s| s.theme_id)
            .collect::<Vec<_>>()
    };
    // Built here; no theme knows these words yet.
    assert_eq!(suggest(&mut v, "請求書").await, std::slice::from_ref(&billing.id));
    assert!(suggest(&mut v, "zebra giraffe").await.is_empty());

    // A new item, put in a theme: its words now speak for the theme.
    let zoo = create_item(&mut v, item(&a, "zebra giraffe safari", pb::Department::Product, 3)).await;
    create_item(&mut v, item(&a, "zebra giraffe park", pb::Department::Product, 3)).await;
    v.assign_theme(pb::AssignThemeRequest { item_id: zoo.id.clone(), theme_id: login.id.clone() }).await.unwrap();
    assert_eq!(suggest(&mut v, "zebra giraffe").await, std::slice::from_ref(&login.id));

    // A reworded theme is read by its new words.
    v.update_theme(pb::UpdateThemeRequest {
        theme: Some(pb::Theme {
            id: billing.id.clone(),
            description: "elephant rhino".into(),
            etag: billing.etag.clone(),
            ..Default::default()
        }),
        update_mask: Some(pbjson_types::FieldMask { paths: vec!["description".into()] }),
    })
    .await
    .unwrap();
    assert_eq!(suggest(&mut v, "elephant rhino").await, std::slice::from_ref(&billing.id));

    // An item older than the index put in a theme, then taken out: the
    // very next suggestion has each (the links made and unmade are read in
    // the order they were).
    let hippo = old[2].id.clone();
    v.assign_theme(pb::AssignThemeRequest { item_id: hippo.clone(), theme_id: billing.id.clone() }).await.unwrap();
    assert_eq!(suggest(&mut v, "hippo").await, std::slice::from_ref(&billing.id));
    v.unassign_theme(pb::UnassignThemeRequest { item_id: hippo, theme_id: billing.id.clone() }).await.unwrap();
    let seen = suggest(&mut v, "hippo").await;
    assert!(seen.is_empty(), "{seen:?}");
    app.stop().await.unwrap();
}

/// A lexicon asked for and not there stops the service, with its path:
/// silently without it, every suggestion would change.
#[tokio::test]
async fn a_lexicon_that_cannot_be_read_stops_the_service() {
    let missing = "/nonexistent/banso-edict";
    let options =
        banso_testkit::Options { vars: vec![("BANSO_FEEDBACK_LEXICON".into(), missing.into())], ..Default::default() };
    let err = banso_testkit::spawn_with(options, &[&banso_feedback::SERVICE]).await.err().expect("refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("BANSO_FEEDBACK_LEXICON") && msg.contains(missing), "{msg}");
}
