//! Touch-mix rules (issue #12): the first rule whose condition holds sets
//! an account's mix unless it was set by hand; rule changes re-apply;
//! forbidden shares fall back; history says RULE and the rule's name.

use banso_proto::{accounts as pb, types as tpb};

use crate::common::*;

use pb::TouchModel as T;

fn share(t: pb::TouchModel, percent: i32) -> tpb::TouchShare {
    tpb::TouchShare { touch_model: t as i32, percent }
}

fn rule(name: &str, condition: &str, mix: &[(pb::TouchModel, i32)]) -> pb::TouchMixRule {
    pb::TouchMixRule {
        name: name.into(),
        condition: condition.into(),
        touch_mix: mix.iter().map(|(t, p)| share(*t, *p)).collect(),
    }
}

async fn set_rules(
    c: &mut Client,
    rules: Vec<pb::TouchMixRule>,
) -> Result<pb::UpdateTouchMixRulesResponse, tonic::Status> {
    c.update_touch_mix_rules(pb::UpdateTouchMixRulesRequest {
        touch_mix_rules: Some(pb::TouchMixRules { rules, ..Default::default() }),
    })
    .await
    .map(|r| r.into_inner())
}

async fn update(c: &mut Client, a: pb::Account, paths: &[&str]) -> pb::Account {
    c.update_account(pb::UpdateAccountRequest { account: Some(a), update_mask: mask(paths) })
        .await
        .expect("update account")
        .into_inner()
}

async fn get(c: &mut Client, id: &str) -> pb::Account {
    c.get_account(pb::GetAccountRequest { id: id.into() }).await.unwrap().into_inner()
}

/// The account's history, newest first: (set_by, setter, mix).
async fn history(c: &mut Client, id: &str) -> Vec<(i32, String, Vec<tpb::TouchShare>)> {
    c.list_touch_mix_history(pb::ListTouchMixHistoryRequest { account_id: id.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .changes
        .into_iter()
        .map(|c| (c.set_by, c.setter_id, c.touch_mix))
        .collect()
}

fn big_and_rest() -> Vec<pb::TouchMixRule> {
    vec![
        rule("big", "account.arr >= 10000000", &[(T::High, 60), (T::Tech, 40)]),
        rule("medical", "account.industry == 'medical'", &[(T::Low, 100)]),
        rule("rest", "true", &[(T::Tech, 100)]),
    ]
}

const RULE: i32 = pb::TouchMixSetter::Rule as i32;
const MANUAL: i32 = pb::TouchMixSetter::Manual as i32;

#[tokio::test]
async fn rules_apply_on_create_and_update_in_order() {
    let app = spawn().await;
    let mut c = admin(&app);
    let r = set_rules(&mut c, big_and_rest()).await.unwrap();
    assert_eq!(r.accounts_changed, 0);
    let got = c.get_touch_mix_rules(pb::GetTouchMixRulesRequest {}).await.unwrap().into_inner();
    assert_eq!(got.rules, big_and_rest());
    assert_eq!(got.etag, r.touch_mix_rules.unwrap().etag);

    // The first that holds: big beats medical.
    let a = create(&mut c, pb::Account { industry: "medical".into(), arr: money("JPY", 20_000_000), ..account("Big") })
        .await;
    assert_eq!(a.touch_mix, vec![share(T::High, 60), share(T::Tech, 40)]);
    assert_eq!(a.touch_model, T::High as i32);
    assert!(!a.touch_mix_manual);
    assert_eq!(history(&mut c, &a.id).await, vec![(RULE, "big".into(), a.touch_mix.clone())]);

    // An update that makes another rule hold: it sets the mix.
    let b =
        update(&mut c, pb::Account { id: a.id.clone(), arr: money("JPY", 1), ..Default::default() }, &["arr"]).await;
    assert_eq!(b.touch_mix, vec![share(T::Low, 100)]);
    assert_eq!(b.touch_model, T::Low as i32);
    let h = history(&mut c, &a.id).await;
    assert_eq!(h[0], (RULE, "medical".into(), vec![share(T::Low, 100)]));
    assert_eq!(h.len(), 2);
    let b = update(
        &mut c,
        pb::Account { id: a.id.clone(), industry: "retail".into(), ..Default::default() },
        &["industry"],
    )
    .await;
    assert_eq!(b.touch_mix, vec![share(T::Tech, 100)]);
    assert_eq!(history(&mut c, &a.id).await[0].1, "rest");

    // A change the rules do not care about writes no history row.
    update(&mut c, pb::Account { id: a.id.clone(), name: "Renamed".into(), ..Default::default() }, &["name"]).await;
    assert_eq!(history(&mut c, &a.id).await.len(), 3);
}

#[tokio::test]
async fn a_mix_set_by_hand_wins_until_handed_back() {
    let app = spawn().await;
    let mut c = admin(&app);
    set_rules(&mut c, big_and_rest()).await.unwrap();

    // A mix sent on create is held.
    let a =
        create(&mut c, pb::Account { touch_model: 0, touch_mix: vec![share(T::High, 100)], ..account("Held") }).await;
    assert!(a.touch_mix_manual);
    assert_eq!(a.touch_mix, vec![share(T::High, 100)]);
    assert_eq!(history(&mut c, &a.id).await, vec![(MANUAL, "test-user".into(), vec![share(T::High, 100)])]);

    // touch_model alone on create is a starting mix: the rules replace it.
    let b = create(&mut c, account("Ruled")).await;
    assert!(!b.touch_mix_manual);
    assert_eq!(b.touch_mix, vec![share(T::Tech, 100)]);
    // Set by hand on update: held against the rules, even when rules change.
    let b = update(
        &mut c,
        pb::Account { id: b.id.clone(), touch_model: T::Low as i32, ..Default::default() },
        &["touch_model"],
    )
    .await;
    assert!(b.touch_mix_manual);
    assert_eq!(b.touch_mix, vec![share(T::Low, 100)]);
    let b2 =
        update(&mut c, pb::Account { id: b.id.clone(), industry: "x".into(), ..Default::default() }, &["industry"])
            .await;
    assert_eq!(b2.touch_mix, vec![share(T::Low, 100)], "a manual mix stays on later writes");
    let r = set_rules(&mut c, vec![rule("all", "true", &[(T::High, 50), (T::Low, 50)])]).await.unwrap();
    assert_eq!(r.accounts_changed, 0, "both accounts are held by hand");
    assert_eq!(get(&mut c, &b.id).await.touch_mix, vec![share(T::Low, 100)]);

    // Handed back (touch_mix named, empty): the rule applies at once.
    let back = update(&mut c, pb::Account { id: b.id.clone(), ..Default::default() }, &["touch_mix"]).await;
    assert!(!back.touch_mix_manual);
    assert_eq!(back.touch_mix, vec![share(T::High, 50), share(T::Low, 50)]);
    assert_eq!(back.touch_model, T::High as i32);
    assert_eq!(history(&mut c, &b.id).await[0], (RULE, "all".into(), back.touch_mix.clone()));
}

#[tokio::test]
async fn changed_rules_reapply_to_every_ruled_account() {
    let app = spawn().await;
    let mut c = admin(&app);
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            create(&mut c, pb::Account { arr: money("JPY", i * 10_000_000), ..account(&format!("A{i}")) }).await.id,
        );
    }
    let r = set_rules(&mut c, big_and_rest()).await.unwrap();
    // Every account: "big" for 6 of them, "rest" for the one with ARR 0.
    assert_eq!(r.accounts_changed, 7);
    assert_eq!(get(&mut c, &ids[0]).await.touch_mix, vec![share(T::Tech, 100)]);
    assert_eq!(get(&mut c, &ids[3]).await.touch_mix, vec![share(T::High, 60), share(T::Tech, 40)]);
    assert_eq!(history(&mut c, &ids[3]).await[0].1, "big");

    // The same rules again change nothing; a stale etag is refused.
    let etag = r.touch_mix_rules.unwrap().etag;
    let again = c
        .update_touch_mix_rules(pb::UpdateTouchMixRulesRequest {
            touch_mix_rules: Some(pb::TouchMixRules {
                rules: big_and_rest(),
                etag: etag.clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.accounts_changed, 0);
    let emptied = c
        .update_touch_mix_rules(pb::UpdateTouchMixRulesRequest {
            touch_mix_rules: Some(pb::TouchMixRules { rules: vec![], etag: etag.clone(), ..Default::default() }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(emptied.accounts_changed, 0, "no rule: every mix stays");
    let err = c
        .update_touch_mix_rules(pb::UpdateTouchMixRulesRequest {
            touch_mix_rules: Some(pb::TouchMixRules { rules: big_and_rest(), etag, ..Default::default() }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Aborted);

    // No rule holding leaves the mix as it is.
    let r = set_rules(&mut c, vec![rule("none", "false", &[(T::Low, 100)])]).await.unwrap();
    assert_eq!(r.accounts_changed, 0);
    assert_eq!(get(&mut c, &ids[0]).await.touch_mix, vec![share(T::Tech, 100)]);
}

#[tokio::test]
async fn a_forbidden_share_falls_back_but_a_manual_mix_is_kept() {
    let app = spawn().await;
    let mut c = admin(&app);
    c.create_segment(pb::CreateSegmentRequest {
        segment: Some(pb::Segment {
            display_name: "Regulated".into(),
            expression: "account.industry == 'banking'".into(),
            forbidden_touch_models: vec![T::Tech as i32],
            ..Default::default()
        }),
        request_id: String::new(),
    })
    .await
    .unwrap();
    set_rules(&mut c, vec![rule("blend", "true", &[(T::High, 60), (T::Tech, 40)])]).await.unwrap();
    let bank = create(&mut c, pb::Account { industry: "banking".into(), ..account("Bank") }).await;
    assert_eq!(bank.touch_mix, vec![share(T::High, 60), share(T::Low, 40)], "tech's share goes to low");
    let shop = create(&mut c, pb::Account { industry: "retail".into(), ..account("Shop") }).await;
    assert_eq!(shop.touch_mix, vec![share(T::High, 60), share(T::Tech, 40)]);
    let held = create(
        &mut c,
        pb::Account {
            industry: "banking".into(),
            touch_model: 0,
            touch_mix: vec![share(T::Tech, 100)],
            ..account("Held")
        },
    )
    .await;
    assert_eq!(held.touch_mix, vec![share(T::Tech, 100)], "a manual mix is kept as it is");
}

#[tokio::test]
async fn bad_rules_are_field_violations() {
    let app = spawn().await;
    let mut c = admin(&app);
    let err = set_rules(
        &mut c,
        vec![
            rule("ok", "true", &[(T::High, 100)]),
            rule("", "true", &[(T::High, 100)]),
            rule("cel", "account.arr >=\n  account.nope", &[(T::High, 100)]),
            rule("sum", "true", &[(T::High, 60), (T::Low, 30)]),
            rule("dup", "true", &[(T::High, 50), (T::High, 50)]),
            rule("ok", "true", &[(T::High, 100)]),
            rule("empty", "", &[]),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_violation(&err, "touch_mix_rules.rules[1].name");
    let vs = violations(&err);
    assert!(
        vs.iter().any(|(f, d)| f == "touch_mix_rules.rules[2].condition" && d.contains("line 2")),
        "CEL errors say where: {vs:?}"
    );
    assert!(vs.iter().any(|(f, d)| f == "touch_mix_rules.rules[3].touch_mix" && d.contains("90")), "{vs:?}");
    assert_violation(&err, "touch_mix_rules.rules[4].touch_mix[1].touch_model");
    assert_violation(&err, "touch_mix_rules.rules[5].name");
    assert_violation(&err, "touch_mix_rules.rules[6].condition");
    assert_violation(&err, "touch_mix_rules.rules[6].touch_mix");
    assert!(!vs.iter().any(|(f, _)| f.starts_with("touch_mix_rules.rules[0]")), "{vs:?}");

    let many = (0..51).map(|i| rule(&format!("r{i}"), "true", &[(T::High, 100)])).collect();
    assert_violation(&set_rules(&mut c, many).await.unwrap_err(), "touch_mix_rules.rules");
    let err = c.update_touch_mix_rules(pb::UpdateTouchMixRulesRequest { touch_mix_rules: None }).await.unwrap_err();
    assert_violation(&err, "touch_mix_rules");
    // Nothing was stored.
    let got = c.get_touch_mix_rules(pb::GetTouchMixRulesRequest {}).await.unwrap().into_inner();
    assert!(got.rules.is_empty());
}

#[tokio::test]
async fn only_admins_write_rules_and_tenants_see_their_own() {
    let app = spawn().await;
    let mut c = admin(&app);
    set_rules(&mut c, big_and_rest()).await.unwrap();
    for role in [Role::Viewer, Role::Csm] {
        let mut other = client(&app, "acme", role);
        let err = set_rules(&mut other, vec![]).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{role:?}");
        let got = other.get_touch_mix_rules(pb::GetTouchMixRulesRequest {}).await.unwrap().into_inner();
        assert_eq!(got.rules.len(), 3, "{role:?} reads them");
    }
    let mut globex = client(&app, "globex", Role::Admin);
    let got = globex.get_touch_mix_rules(pb::GetTouchMixRulesRequest {}).await.unwrap().into_inner();
    assert!(got.rules.is_empty(), "another tenant sees nothing");
    let a = create(&mut globex, account("Globex")).await;
    assert_eq!(a.touch_mix, vec![share(T::High, 100)], "acme's rules do not reach globex");
}

#[tokio::test]
async fn a_preview_counts_what_each_rule_would_do_and_writes_nothing() {
    let app = spawn().await;
    let mut c = admin(&app);
    for i in 0..4 {
        create(&mut c, pb::Account { arr: money("JPY", i * 10_000_000), ..account(&format!("A{i}")) }).await;
    }
    create(&mut c, pb::Account { touch_model: 0, touch_mix: vec![share(T::Low, 100)], ..account("Held") }).await;
    let mut viewer = client(&app, "acme", Role::Viewer);
    let p = viewer
        .preview_touch_mix_rules(pb::PreviewTouchMixRulesRequest {
            touch_mix_rules: Some(pb::TouchMixRules { rules: big_and_rest(), ..Default::default() }),
        })
        .await
        .unwrap()
        .into_inner();
    let rows: Vec<_> = p.rules.iter().map(|r| (r.name.as_str(), r.accounts_matched, r.accounts_changed)).collect();
    // A0 has ARR 0 and the starting mix high 100: "rest" would change it.
    assert_eq!(rows, vec![("big", 3, 3), ("medical", 0, 0), ("rest", 1, 1)]);
    assert_eq!((p.accounts_evaluated, p.accounts_held), (5, 1));
    // Nothing was written.
    assert!(c.get_touch_mix_rules(pb::GetTouchMixRulesRequest {}).await.unwrap().into_inner().rules.is_empty());
    let err = c
        .preview_touch_mix_rules(pb::PreviewTouchMixRulesRequest {
            touch_mix_rules: Some(pb::TouchMixRules {
                rules: vec![rule("x", "account.nope", &[])],
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "touch_mix_rules.rules[0].condition");
    assert_violation(&err, "touch_mix_rules.rules[0].touch_mix");
}

/// A re-apply the call leaves unfinished (here: no time at all for it, as
/// a large tenant or a crash would leave it) is finished by the background
/// pass, which the rules row tells has work left.
#[tokio::test]
async fn a_reapply_the_call_leaves_is_finished_in_the_background() {
    let app = banso_testkit::spawn_with(
        banso_testkit::Options {
            vars: vec![("BANSO_ACCOUNTS_TOUCH_RULES_BUDGET_MS".into(), "0".into())],
            ..Default::default()
        },
        &[&banso_accounts::SERVICE],
    )
    .await
    .unwrap();
    let mut c = admin(&app);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            create(&mut c, pb::Account { arr: money("JPY", (i + 1) * 10_000_000), ..account(&format!("B{i}")) })
                .await
                .id,
        );
    }
    let r = set_rules(&mut c, big_and_rest()).await.unwrap();
    assert_eq!(r.accounts_changed, 0, "the call had no time to re-apply");
    for id in &ids {
        let mut c = c.clone();
        let id = id.clone();
        banso_testkit::eventually("the background pass re-applies", std::time::Duration::from_secs(20), || {
            let mut c = c.clone();
            let id = id.clone();
            async move {
                let a = get(&mut c, &id).await;
                (a.touch_mix == vec![share(T::High, 60), share(T::Tech, 40)]).then_some(())
            }
        })
        .await;
        assert_eq!(history(&mut c, &id).await[0].1, "big");
    }
}
