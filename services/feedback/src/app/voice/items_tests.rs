//! The suggestion index kept in step with the store: a commit of this
//! process caught up in the background, before any suggestion asks; a
//! change of another process (its own index elsewhere) in the very next
//! suggestion; a suggestion answered while a catch-up reads the store.

use std::time::Duration;

use banso_events::Db;
use banso_kit::auth::{Caller, Role};
use uuid::Uuid;

use crate::{
    app::App,
    domain::voice::{Channel, Department, Item, ItemFields, ItemSnapshot, ThemeBody},
    store,
};

const TENANT: &str = "acme";

async fn app(db: &banso_testkit::TestDb) -> App {
    let conn = db.connect::<crate::migration::Migrator>(crate::NAME).await.unwrap();
    App::new(
        Db::new(conn, Default::default(), crate::NAME),
        crate::domain::token::Signer::new(b"index-tests-token-secret-0123456789"),
        "",
    )
}

fn admin() -> Caller {
    Caller { tenant_id: TENANT.into(), subject: "test-admin".into(), roles: vec![Role::Admin] }
}

async fn theme(app: &App, name: &str, description: &str) -> Uuid {
    let body = ThemeBody {
        display_name: name.into(),
        description: description.into(),
        keywords: vec![],
        decision_owner: String::new(),
        departments: vec![],
        assessment: Default::default(),
        roadmap: Default::default(),
    };
    app.create_theme(&admin(), None, body).await.unwrap().id
}

/// An item recorded as CreateFeedbackItem records it (the account's
/// projection aside), and this process told of the commit.
async fn item(app: &App, text: &str) -> Uuid {
    let mut items = [Item {
        id: Uuid::now_v7(),
        fields: ItemFields {
            text: text.into(),
            channel: Channel::CsmNote,
            account_id: Uuid::now_v7(),
            contact_id: None,
            department: Department::Product,
            category: String::new(),
            cx_dimension: None,
            journey_phase: None,
            severity: 3,
            mention_time: None,
        },
        snapshot: ItemSnapshot::default(),
        theme_ids: vec![],
        answer_id: None,
        create_time: banso_kit::wire::now(),
        created_by: "test".into(),
    }];
    app.db.write(TENANT, async |tx| super::record(tx, &mut items, &[], super::Announce::EachItem).await).await.unwrap();
    app.moved(TENANT);
    items[0].id
}

async fn suggest(app: &App, of: std::result::Result<Uuid, &str>) -> Vec<Uuid> {
    let of = of.map_err(str::to_string);
    app.suggest_themes(&admin(), of, 3).await.unwrap().into_iter().map(|s| s.0).collect()
}

/// The generation of the index this process keeps, and whether it has `item`.
async fn kept(app: &App, item: Uuid) -> (i64, bool) {
    let slot = app.indexes.existing(TENANT).unwrap();
    let read = slot.kept.read().await;
    let k = read.as_ref().unwrap();
    (k.index.generation, k.index.has_item(item))
}

#[tokio::test]
async fn a_commit_here_catches_the_index_up_before_a_suggestion_asks() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let app = app(&db).await;
    let zoo = theme(&app, "Zoo", "animals").await;
    // Built by the first suggestion; no theme knows these words yet.
    assert!(suggest(&app, Err("zebra giraffe")).await.is_empty());
    let zebra = item(&app, "zebra giraffe safari").await;
    item(&app, "zebra giraffe park").await;
    app.assign_theme(&admin(), zebra, zoo, "hand").await.unwrap();
    let generation = store::voice::generation(app.db.conn(), TENANT).await.unwrap();
    // No suggestion asks: the commits woke the catch-up. It runs at most
    // once a second, later on a loaded machine: wait up to 15 s for it.
    let mut seen = (0, false);
    for _ in 0..750 {
        seen = kept(&app, zebra).await;
        if seen == (generation, true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, (generation, true));
    assert_eq!(suggest(&app, Err("zebra giraffe")).await, [zoo]);
}

#[tokio::test]
async fn a_suggestion_reflects_a_change_another_process_committed_just_before() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let (here, there) = (app(&db).await, app(&db).await);
    let zoo = theme(&here, "Zoo", "animals").await;
    let other = theme(&here, "Billing", "invoice").await;
    assert_eq!(suggest(&here, Err("invoice")).await, [other]);
    // Another process records items and assigns one: this process is not
    // told; its next suggestion reads the store's generation and catches up.
    let zebra = item(&there, "zebra giraffe safari").await;
    there.assign_theme(&admin(), zebra, zoo, "hand").await.unwrap();
    let park = item(&there, "zebra giraffe park").await;
    assert_eq!(suggest(&here, Err("zebra giraffe")).await, [zoo]);
    // An item of a moment ago, by its id.
    assert_eq!(suggest(&here, Ok(park)).await, [zoo]);
    // Its own theme is left out.
    assert!(suggest(&here, Ok(zebra)).await.is_empty());
    assert!(kept(&here, park).await.1);
}

#[tokio::test]
async fn a_suggestion_is_answered_while_a_catch_up_reads_the_store() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let app = app(&db).await;
    let billing = theme(&app, "Billing", "invoice").await;
    assert_eq!(suggest(&app, Err("invoice")).await, [billing]);
    // A catch-up under way holds `updating` while it reads the store; a
    // suggestion the index already answers does not wait for it.
    let slot = app.indexes.existing(TENANT).unwrap();
    let updating = slot.updating.lock().await;
    let s = tokio::time::timeout(Duration::from_secs(5), suggest(&app, Err("invoice"))).await;
    assert_eq!(s.expect("the suggestion waited for the catch-up"), [billing]);
    // One that needs a change the index lacks waits for it, then has it.
    let wrong = item(&app, "invoice amount wrong").await;
    let wait = tokio::spawn({
        let app = app.clone();
        async move { suggest(&app, Ok(wrong)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!wait.is_finished());
    drop(updating);
    assert_eq!(wait.await.unwrap(), [billing]);
    assert!(kept(&app, wrong).await.1);
}
