//! Deterministic, realistic accounts: the same seed gives the same rows on
//! every run (StdRng of the workspace's `rand`).

use banso_proto::{accounts as pb, types as tpb};
use chrono::{Datelike, Months, NaiveDate};
use rand::{
    Rng, SeedableRng,
    rngs::StdRng,
    seq::{IndexedRandom, index},
};

const JP_STEMS: &[&str] = &[
    "山田",
    "青葉",
    "富士",
    "桜井",
    "北斗",
    "大和",
    "東邦",
    "三河",
    "瑞穂",
    "朝日",
    "日之出",
    "中央",
    "岩崎",
    "松本",
    "白鷺",
    "若葉",
    "丸の内",
    "光洋",
    "鳳凰",
    "新星",
    "みらい",
    "ひかり",
    "さくら",
];
const JP_SUFFIXES: &[&str] = &[
    "製作所",
    "商事",
    "システムズ",
    "テクノロジーズ",
    "フーズ",
    "物流",
    "ホールディングス",
    "工業",
    "不動産",
    "電機",
    "ソリューションズ",
    "メディカル",
    "建設",
    "化学",
    "ネットワークス",
];
const LATIN_FIRST: &[&str] = &[
    "Acme",
    "Bluefin",
    "Northwind",
    "Orbit",
    "Summit",
    "Vertex",
    "Nimbus",
    "Pioneer",
    "Kestrel",
    "Lumen",
    "Harbor",
    "Cobalt",
    "Meridian",
    "Sakura",
    "Fuji",
    "Osprey",
    "Granite",
];
const LATIN_SECOND: &[&str] = &[
    "Analytics",
    "Logistics",
    "Foods",
    "Robotics",
    "Health",
    "Labs",
    "Software",
    "Capital",
    "Energy",
    "Retail",
    "Media",
    "Systems",
];
const LATIN_LEGAL: &[&str] = &["Inc.", "GmbH", "Ltd.", "K.K.", "Pte. Ltd.", "S.A.", "LLC", "B.V."];
const INDUSTRIES: &[&str] = &[
    "Manufacturing",
    "Software",
    "Retail",
    "Financial Services",
    "Healthcare",
    "Logistics",
    "Real Estate",
    "Media",
    "Education",
    "Telecommunications",
    "Construction",
    "Food & Beverage",
    "Automotive",
    "Energy",
    "Public Sector",
];
const REGIONS: &[&str] =
    &["JP-Kanto", "JP-Kansai", "JP-Chubu", "JP-Kyushu", "JP-Tohoku", "JP-Hokkaido", "APAC", "North America", "EMEA"];
const PLAN_TIERS: &[&str] = &["Starter", "Standard", "Professional", "Enterprise"];
const TAGS: &[&str] = &[
    "vip",
    "at-risk",
    "reference",
    "partner",
    "beta",
    "enterprise-pilot",
    "renewal-q1",
    "upsell",
    "public-sector",
    "multi-product",
    "needs-training",
    "champion-left",
];
const SEGMENTS: &[&str] = &["SMB", "Mid-Market", "Enterprise", "Strategic"];
const ATTRIBUTES: &[&str] = &["crm_segment", "nps", "onboarded", "kickoff_date", "seats", "discount_rate"];

/// Log-uniform integer in `lo..=hi`.
fn log_uniform(rng: &mut StdRng, lo: f64, hi: f64) -> i64 {
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp().round() as i64
}

fn date(d: NaiveDate) -> tpb::Date {
    tpb::Date { year: d.year(), month: d.month() as i32, day: d.day() as i32 }
}

fn name(rng: &mut StdRng) -> String {
    if rng.random_bool(0.6) {
        let stem = JP_STEMS.choose(rng).expect("non-empty");
        let suffix = JP_SUFFIXES.choose(rng).expect("non-empty");
        match rng.random_range(0..10) {
            0..=5 => format!("株式会社{stem}{suffix}"),
            6..=8 => format!("{stem}{suffix}株式会社"),
            _ => format!("合同会社{stem}{suffix}"),
        }
    } else {
        format!(
            "{} {} {}",
            LATIN_FIRST.choose(rng).expect("non-empty"),
            LATIN_SECOND.choose(rng).expect("non-empty"),
            LATIN_LEGAL.choose(rng).expect("non-empty")
        )
    }
}

fn attribute(rng: &mut StdRng, name: &str) -> tpb::AttributeValue {
    use tpb::attribute_value::Kind;
    let kind = match name {
        "crm_segment" => Kind::StringValue(SEGMENTS.choose(rng).expect("non-empty").to_string()),
        "nps" => Kind::IntValue(rng.random_range(0..=10)),
        "onboarded" => Kind::BoolValue(rng.random_bool(0.8)),
        "kickoff_date" => {
            let d = NaiveDate::from_ymd_opt(2022, 1, 1).expect("valid") + chrono::Days::new(rng.random_range(0..1400));
            Kind::DateValue(date(d))
        }
        "seats" => Kind::IntValue(log_uniform(rng, 3.0, 5000.0)),
        // 0.00, 0.05, …, 0.40: k / 20 prints as the short decimal.
        _ => Kind::DoubleValue(f64::from(rng.random_range(0..=8u8)) / 20.0),
    };
    tpb::AttributeValue { kind: Some(kind) }
}

/// Row `i` (1-based external id `crm-000001`…).
fn account(rng: &mut StdRng, i: usize) -> pb::Account {
    let employee_count = rng.random_bool(0.9).then(|| log_uniform(rng, 5.0, 50_000.0));
    // ARR in JPY (minor unit = 1 yen), rounded to thousands.
    let arr = rng.random_bool(0.95).then(|| log_uniform(rng, 300_000.0, 150_000_000.0) / 1000 * 1000);
    let revenue_band = match employee_count {
        None => "",
        Some(n) if n < 20 => "<1億円",
        Some(n) if n < 200 => "1–10億円",
        Some(n) if n < 2000 => "10–100億円",
        Some(n) if n < 20_000 => "100–1000億円",
        Some(_) => "1000億円+",
    };
    let touch = match arr {
        Some(a) if a >= 10_000_000 => pb::TouchModel::High,
        Some(a) if a >= 2_000_000 => pb::TouchModel::Low,
        _ => pb::TouchModel::Tech,
    };
    let stage = match rng.random_range(0..100) {
        0..10 => pb::LifecycleStage::Onboarding,
        10..50 => pb::LifecycleStage::Adoption,
        50..70 => pb::LifecycleStage::Expansion,
        70..90 => pb::LifecycleStage::Renewal,
        _ => pb::LifecycleStage::Churned,
    };
    let (contract_start_date, renewal_date) = if rng.random_bool(0.95) {
        let start = NaiveDate::from_ymd_opt(2022, 1, 1).expect("valid") + chrono::Days::new(rng.random_range(0..1600));
        let term = [12, 12, 12, 24, 36].choose(rng).copied().expect("non-empty");
        (Some(date(start)), Some(date(start + Months::new(term))))
    } else {
        (None, None)
    };
    let n_tags = rng.random_range(0..=3);
    let tags = index::sample(rng, TAGS.len(), n_tags).into_iter().map(|t| TAGS[t].to_string()).collect();
    let n_attrs = rng.random_range(0..=3);
    let custom_attributes = index::sample(rng, ATTRIBUTES.len(), n_attrs)
        .into_iter()
        .map(|a| ATTRIBUTES[a])
        .map(|a| (a.to_string(), attribute(rng, a)))
        .collect();
    pb::Account {
        name: name(rng),
        external_id: format!("crm-{i:06}"),
        industry: INDUSTRIES.choose(rng).expect("non-empty").to_string(),
        employee_count,
        revenue_band: revenue_band.into(),
        region: REGIONS.choose(rng).expect("non-empty").to_string(),
        plan_tier: PLAN_TIERS.choose(rng).expect("non-empty").to_string(),
        lifecycle_stage: stage as i32,
        touch_model: touch as i32,
        owner_id: format!("csm-{:03}", rng.random_range(1..=40)),
        arr: arr.map(|amount_minor| tpb::Money { currency_code: "JPY".into(), amount_minor }),
        contract_start_date,
        renewal_date,
        tags,
        custom_attributes,
        ..Default::default()
    }
}

/// `n` accounts, the same for the same `seed`.
pub fn accounts(n: usize, seed: u64) -> Vec<pb::Account> {
    let mut rng = StdRng::seed_from_u64(seed);
    (1..=n).map(|i| account(&mut rng, i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_deterministic_and_distinct_by_external_id() {
        let a = accounts(500, 7);
        assert_eq!(a, accounts(500, 7));
        assert_eq!(a[0].external_id, "crm-000001");
        assert_eq!(a[499].external_id, "crm-000500");
        assert!(a.iter().all(|x| x.tags.len() <= 3 && x.custom_attributes.len() <= 3));
        assert!(a.iter().any(|x| x.name.starts_with("株式会社")) && a.iter().any(|x| x.name.is_ascii()));
    }
}
