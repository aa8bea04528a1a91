//! The suggestion index kept in step with the store: a commit of this
//! process caught up in the background, before any suggestion asks; a
//! change of another process (its own index elsewhere) in the very next
//! suggestion, whatever the clocks say; a suggestion answered while a
//! catch-up reads the store.

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
    item_at(app, text, banso_kit::wire::now()).await
}

/// An item recorded at `create_time` by the clock of the process that
/// records it.
async fn item_at(app: &App, text: &str, create_time: chrono::DateTime<chrono::Utc>) -> Uuid {
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
        create_time,
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

/// A theme Zoo with two zebra items, one of them put in it by hand, and
/// this process's index built and answering with it.
async fn zebra_in_zoo(app: &App) -> (Uuid, Uuid) {
    let zoo = theme(app, "Zoo", "animals").await;
    let zebra = item(app, "zebra giraffe safari").await;
    item(app, "zebra giraffe park").await;
    app.assign_theme(&admin(), zebra, zoo, "hand").await.unwrap();
    assert_eq!(suggest(app, Err("zebra giraffe")).await, [zoo]);
    (zoo, zebra)
}

/// The generation of the index this process keeps, and whether it has `item`.
async fn kept(app: &App, item: Uuid) -> (i64, bool) {
    let slot = app.indexes.existing(TENANT).unwrap();
    let read = slot.kept.read().await;
    let k = read.as_ref().unwrap();
    (k.generation, k.has_item(item))
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

#[tokio::test]
async fn a_change_stamped_by_a_clock_behind_is_caught_up_all_the_same() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let (here, there) = (app(&db).await, app(&db).await);
    let zoo = theme(&here, "Zoo", "animals").await;
    assert!(suggest(&here, Err("zebra giraffe")).await.is_empty());
    // Another process whose clock is an hour behind (or this machine's,
    // stepped back) records items: the catch-up reads generations, not times.
    let behind = banso_kit::wire::now() - chrono::TimeDelta::hours(1);
    let zebra = item_at(&there, "zebra giraffe safari", behind).await;
    item_at(&there, "zebra giraffe park", behind).await;
    there.assign_theme(&admin(), zebra, zoo, "hand").await.unwrap();
    assert_eq!(suggest(&here, Err("zebra giraffe")).await, [zoo]);
    assert!(kept(&here, zebra).await.1);
}

#[tokio::test]
async fn an_item_taken_out_of_a_theme_elsewhere_leaves_it_here_at_once() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let (here, there) = (app(&db).await, app(&db).await);
    let (zoo, zebra) = zebra_in_zoo(&here).await;
    there.unassign_theme(&admin(), zebra, zoo).await.unwrap();
    // The next suggestion here has it, without waiting for a check.
    assert!(suggest(&here, Err("zebra giraffe")).await.is_empty());
    let slot = here.indexes.existing(TENANT).unwrap();
    assert_eq!(slot.kept.read().await.as_ref().unwrap().size(), (2, 0));
}

#[tokio::test]
async fn an_index_further_behind_than_the_changes_kept_is_built_again() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let (here, there) = (app(&db).await, app(&db).await);
    let zoo = theme(&here, "Zoo", "animals").await;
    assert!(suggest(&here, Err("zebra giraffe")).await.is_empty());
    let zebra = item(&there, "zebra giraffe safari").await;
    item(&there, "zebra giraffe park").await;
    there.assign_theme(&admin(), zebra, zoo, "hand").await.unwrap();
    // The changes this index lacks are no longer kept (pruned).
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use store::entities::voice_change as vc;
    vc::Entity::delete_many().filter(vc::Column::TenantId.eq(TENANT)).exec(here.db.conn()).await.unwrap();
    assert_eq!(suggest(&here, Err("zebra giraffe")).await, [zoo]);
    assert!(kept(&here, zebra).await.1);
}

#[tokio::test]
async fn every_generation_keeps_its_change_until_it_is_pruned() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let app = app(&db).await;
    let n = store::voice::CHANGES_KEPT + 76;
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    app.db
        .write(TENANT, async |tx| {
            for (k, id) in ids.iter().enumerate() {
                let change = crate::domain::suggest::Change {
                    items: vec![*id],
                    themes: vec![*id],
                    linked: vec![(*id, Uuid::nil())],
                    unlinked: vec![(Uuid::nil(), *id), (*id, *id)],
                };
                let g = store::voice::bump_generation(tx.conn(), tx.tenant(), &change).await?;
                assert_eq!(g, k as i64 + 1);
            }
            Ok(())
        })
        .await
        .unwrap();
    let conn = app.db.conn();
    let read = async |after, upto| store::voice::changes_between(conn, TENANT, after, upto).await.unwrap();
    // The last CHANGES_KEPT generations, each as it was recorded, in order.
    let kept = read(n - store::voice::CHANGES_KEPT, n).await.expect("the last generations are kept");
    assert_eq!(kept.len() as i64, store::voice::CHANGES_KEPT);
    for (c, id) in kept.iter().zip(&ids[(n - store::voice::CHANGES_KEPT) as usize..]) {
        assert_eq!(c.items, [*id]);
        assert_eq!(c.themes, [*id]);
        assert_eq!(c.linked, [(*id, Uuid::nil())]);
        assert_eq!(c.unlinked, [(Uuid::nil(), *id), (*id, *id)]);
    }
    assert_eq!(read(n - 3, n - 1).await.map(|c| c.len()), Some(2));
    assert_eq!(read(n, n).await, Some(vec![]));
    // Further back than is kept, or pruned: none (build again).
    assert_eq!(read(n - store::voice::CHANGES_KEPT - 1, n).await, None);
    assert_eq!(read(1, 10).await, None);
    // Another tenant's generations are its own.
    assert_eq!(store::voice::changes_between(conn, "other", 0, 1).await.unwrap(), None);
}

#[tokio::test]
async fn a_pair_unlinked_then_linked_again_by_a_keyword_is_what_the_store_says() {
    let db = banso_testkit::fresh_database().await.unwrap();
    let (here, there) = (app(&db).await, app(&db).await);
    let (zoo, zebra) = zebra_in_zoo(&here).await;
    // Elsewhere: taken out by hand, then put back by a keyword rule (the
    // theme's change comes after the unlink).
    there.unassign_theme(&admin(), zebra, zoo).await.unwrap();
    there.update_theme(&admin(), zoo, None, |b| b.keywords = vec!["zebra".into()]).await.unwrap();
    assert_eq!(suggest(&here, Err("zebra giraffe")).await, [zoo]);
    let slot = here.indexes.existing(TENANT).unwrap();
    let size = slot.kept.read().await.as_ref().unwrap().size();
    let counts = store::voice::item_and_link_counts(here.db.conn(), TENANT).await.unwrap();
    assert_eq!((size.0 as u64, size.1 as u64), counts);
    assert_eq!(counts, (2, 2));
}

/// A catch-up that read an item with a link made after the generation it
/// read (the store's state now), before a second item made the item's words
/// speak: the next catch-up brings the second item and finds the link in
/// place. The index is weighed again, so the theme has the item's words.
#[test]
fn an_item_linked_before_its_words_spoke_counts_for_its_theme_once_they_do() {
    use crate::domain::suggest::ThemeDoc;
    let (zoo, zebra, park) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let mut index =
        crate::domain::suggest::Index::build(0, &[], &[ThemeDoc { id: zoo, name: "Zoo", words: "Zoo animals".into() }]);
    let changes = |generation, items: Vec<(Uuid, String, Vec<Uuid>)>, links| super::Changes {
        generation,
        themes: vec![],
        theme_links: vec![],
        items,
        links,
    };
    changes(1, vec![(zebra, "zebra giraffe safari".into(), vec![zoo])], vec![]).apply(&mut index);
    changes(3, vec![(park, "zebra giraffe park".into(), vec![])], vec![(zebra, zoo, true)]).apply(&mut index);
    assert_eq!(index.generation, 3);
    let s = index.suggest("zebra giraffe", &[], 3, 0.1);
    assert_eq!(s.first().map(|s| s.0), Some(zoo), "{s:?}");
}
