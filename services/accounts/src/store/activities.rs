//! The timeline: activities logged with their ActivityLogged event.

use banso_kit::{Error, Result, Violations, idempotency};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use uuid::Uuid;

use super::{
    Store, corrupt,
    entities::{activity, contact},
};
use crate::domain::{
    activity::{Activity, ActivityFilter, ActivityKind},
    now,
};

const OP_LOG_ACTIVITY: &str = "LogActivity";

fn from_model(m: activity::Model) -> Result<Activity> {
    let ids: Vec<String> = serde_json::from_value(m.contact_ids).map_err(|e| corrupt("contact_ids", e))?;
    Ok(Activity {
        id: m.id,
        account_id: m.account_id,
        kind: ActivityKind::parse(&m.kind).ok_or_else(|| corrupt("activity kind", &m.kind))?,
        contact_ids: ids
            .iter()
            .map(|s| Uuid::parse_str(s).map_err(|e| corrupt("contact id", e)))
            .collect::<Result<_>>()?,
        author_id: m.author_id,
        occur_time: m.occur_time,
        subject: m.subject,
        body: m.body,
        external_ref: m.external_ref,
        create_time: m.create_time,
    })
}

impl Store {
    async fn get_activity(&self, tenant: &str, id: Uuid) -> Result<Activity> {
        activity::Entity::find_by_id(id)
            .filter(activity::Column::TenantId.eq(tenant))
            .one(&self.db)
            .await?
            .map(from_model)
            .transpose()?
            .ok_or_else(|| Error::not_found("activity", id.to_string()))
    }

    /// Logs `a` (its id and create time are assigned here).
    pub async fn log_activity(&self, tenant: &str, mut a: Activity, request_id: Option<&str>) -> Result<Activity> {
        if let Some(key) = request_id
            && let Some(id) = idempotency::lookup(&self.db, tenant, OP_LOG_ACTIVITY, key).await?
        {
            return self.get_activity(tenant, Uuid::parse_str(&id).map_err(Error::internal)?).await;
        }
        self.get_account(tenant, a.account_id).await?;
        if !a.contact_ids.is_empty() {
            let known: Vec<Uuid> = contact::Entity::find()
                .filter(contact::Column::TenantId.eq(tenant))
                .filter(contact::Column::AccountId.eq(a.account_id))
                .filter(contact::Column::Id.is_in(a.contact_ids.clone()))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|c| c.id)
                .collect();
            let mut v = Violations::new();
            for (i, id) in a.contact_ids.iter().enumerate() {
                v.check(
                    !known.contains(id),
                    format!("activity.contact_ids[{i}]"),
                    format!("{id} is not a contact of account {}", a.account_id),
                );
            }
            v.finish()?;
        }
        a.id = Uuid::now_v7();
        a.create_time = now();
        let txn = self.db.begin().await?;
        let inserted = activity::Entity::insert(activity::ActiveModel {
            id: Set(a.id),
            tenant_id: Set(tenant.to_owned()),
            account_id: Set(a.account_id),
            kind: Set(a.kind.as_str().to_owned()),
            contact_ids: Set(serde_json::to_value(a.contact_ids.iter().map(Uuid::to_string).collect::<Vec<_>>())
                .expect("ids serialize")),
            author_id: Set(a.author_id.clone()),
            occur_time: Set(a.occur_time),
            subject: Set(a.subject.clone()),
            body: Set(a.body.clone()),
            external_ref: Set(a.external_ref.clone()),
            create_time: Set(a.create_time),
        })
        .exec_without_returning(&txn)
        .await;
        if let Err(e) = inserted {
            txn.rollback().await?;
            return Err(match Error::from(e) {
                Error::AlreadyExists(_) => Error::AlreadyExists(format!(
                    "an activity with external_ref {:?} is already on the timeline",
                    a.external_ref.unwrap_or_default()
                )),
                // The account was deleted since the check.
                Error::Internal(_) => Error::not_found("account", a.account_id.to_string()),
                other => other,
            });
        }
        if let Some(key) = request_id
            && let Err(e) = idempotency::record(&txn, tenant, OP_LOG_ACTIVITY, key, &a.id.to_string()).await
        {
            txn.rollback().await?;
            return match e {
                Error::AlreadyExists(_) => match idempotency::lookup(&self.db, tenant, OP_LOG_ACTIVITY, key).await? {
                    Some(id) => self.get_activity(tenant, Uuid::parse_str(&id).map_err(Error::internal)?).await,
                    None => Err(Error::Aborted { reason: "CONCURRENT_UPDATE", message: "retry".into() }),
                },
                other => Err(other),
            };
        }
        self.emit(&txn, tenant, crate::events::activity_logged(&a)).await?;
        self.commit(txn).await?;
        Ok(a)
    }

    /// Activities newest first, after `(occur_time, id)`.
    pub async fn list_activities(
        &self,
        tenant: &str,
        f: &ActivityFilter,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u64,
    ) -> Result<Vec<Activity>> {
        use activity::Column as C;
        let mut q = activity::Entity::find().filter(C::TenantId.eq(tenant));
        if let Some(a) = f.account_id {
            q = q.filter(C::AccountId.eq(a));
        }
        if !f.kinds.is_empty() {
            q = q.filter(C::Kind.is_in(f.kinds.iter().map(|k| k.as_str())));
        }
        if let Some(author) = &f.author_id {
            q = q.filter(C::AuthorId.eq(author.as_str()));
        }
        if let Some(t) = f.start_time {
            q = q.filter(C::OccurTime.gte(t));
        }
        if let Some(t) = f.end_time {
            q = q.filter(C::OccurTime.lt(t));
        }
        if let Some((t, id)) = after {
            q = q.filter(
                Condition::any()
                    .add(C::OccurTime.lt(t))
                    .add(Condition::all().add(C::OccurTime.eq(t)).add(C::Id.lt(id))),
            );
        }
        q.order_by(C::OccurTime, Order::Desc)
            .order_by(C::Id, Order::Desc)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(from_model)
            .collect()
    }

    /// E-mails sent and replied on an account's timeline in [start, end).
    pub async fn email_counts(
        &self,
        tenant: &str,
        account_id: Uuid,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<(u64, u64)> {
        self.get_account(tenant, account_id).await?;
        let count = |kind: ActivityKind| {
            activity::Entity::find()
                .filter(activity::Column::TenantId.eq(tenant))
                .filter(activity::Column::AccountId.eq(account_id))
                .filter(activity::Column::Kind.eq(kind.as_str()))
                .filter(activity::Column::OccurTime.gte(start))
                .filter(activity::Column::OccurTime.lt(end))
                .count(&self.db)
        };
        Ok((count(ActivityKind::EmailSent).await?, count(ActivityKind::EmailReplied).await?))
    }
}
