//! Saved segments. Evaluation reads accounts through `list_accounts`.

use banso_kit::{Error, Result, idempotency};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use banso_proto::events::segment_changed::Change;

use super::{Store, entities::segment};
use crate::{
    domain::{check_etag, now, segment::Segment},
    events,
};

const OP_CREATE_SEGMENT: &str = "CreateSegment";

fn from_model(m: segment::Model) -> Segment {
    Segment {
        id: m.id,
        display_name: m.display_name,
        description: m.description,
        expression: m.expression,
        create_time: m.create_time,
        update_time: m.update_time,
        version: m.version,
    }
}

fn active(tenant: &str, s: &Segment) -> segment::ActiveModel {
    segment::ActiveModel {
        id: Set(s.id),
        tenant_id: Set(tenant.to_owned()),
        display_name: Set(s.display_name.clone()),
        description: Set(s.description.clone()),
        expression: Set(s.expression.clone()),
        create_time: Set(s.create_time),
        update_time: Set(s.update_time),
        version: Set(s.version),
    }
}

impl Store {
    pub async fn get_segment(&self, tenant: &str, id: Uuid) -> Result<Segment> {
        segment::Entity::find_by_id(id)
            .filter(segment::Column::TenantId.eq(tenant))
            .one(&self.db)
            .await?
            .map(from_model)
            .ok_or_else(|| Error::not_found("segment", id.to_string()))
    }

    pub async fn list_segments(&self, tenant: &str, after: Option<Uuid>, limit: u64) -> Result<Vec<Segment>> {
        let mut q = segment::Entity::find().filter(segment::Column::TenantId.eq(tenant));
        if let Some(id) = after {
            q = q.filter(segment::Column::Id.gt(id));
        }
        Ok(q.order_by(segment::Column::Id, Order::Asc)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(from_model)
            .collect())
    }

    pub async fn create_segment(&self, tenant: &str, mut s: Segment, request_id: Option<&str>) -> Result<Segment> {
        if let Some(key) = request_id
            && let Some(id) = idempotency::lookup(&self.db, tenant, OP_CREATE_SEGMENT, key).await?
        {
            return self.get_segment(tenant, Uuid::parse_str(&id).map_err(Error::internal)?).await;
        }
        let t = now();
        s.id = Uuid::now_v7();
        s.create_time = t;
        s.update_time = t;
        s.version = 1;
        let txn = self.db.begin().await?;
        segment::Entity::insert(active(tenant, &s)).exec_without_returning(&txn).await?;
        self.emit(&txn, tenant, events::segment_changed(&s, Change::Created)).await?;
        if let Some(key) = request_id
            && let Err(e) = idempotency::record(&txn, tenant, OP_CREATE_SEGMENT, key, &s.id.to_string()).await
        {
            txn.rollback().await?;
            return match (e, idempotency::lookup(&self.db, tenant, OP_CREATE_SEGMENT, key).await?) {
                (Error::AlreadyExists(_), Some(id)) => {
                    self.get_segment(tenant, Uuid::parse_str(&id).map_err(Error::internal)?).await
                }
                (e, _) => Err(e),
            };
        }
        self.commit(txn).await?;
        Ok(s)
    }

    pub async fn update_segment(
        &self,
        tenant: &str,
        id: Uuid,
        etag: &str,
        change: impl FnOnce(&mut Segment),
    ) -> Result<Segment> {
        let current = self.get_segment(tenant, id).await?;
        check_etag(etag, current.version)?;
        let mut next = current.clone();
        change(&mut next);
        if next == current {
            return Ok(current);
        }
        next.update_time = now();
        next.version = current.version + 1;
        let txn = self.db.begin().await?;
        let res = segment::Entity::update_many()
            .set(active(tenant, &next))
            .filter(segment::Column::Id.eq(id))
            .filter(segment::Column::TenantId.eq(tenant))
            .filter(segment::Column::Version.eq(current.version))
            .exec(&txn)
            .await?;
        if res.rows_affected == 1 {
            self.emit(&txn, tenant, events::segment_changed(&next, Change::Updated)).await?;
            self.commit(txn).await?;
        } else {
            txn.rollback().await?;
            let now = self.get_segment(tenant, id).await?;
            check_etag(etag, now.version)?;
            return Err(Error::Aborted {
                reason: "CONCURRENT_UPDATE",
                message: format!("segment {id} changed; retry"),
            });
        }
        Ok(next)
    }

    pub async fn delete_segment(&self, tenant: &str, id: Uuid, etag: &str) -> Result<()> {
        let current = self.get_segment(tenant, id).await?;
        check_etag(etag, current.version)?;
        let txn = self.db.begin().await?;
        let res = segment::Entity::delete_many()
            .filter(segment::Column::Id.eq(id))
            .filter(segment::Column::TenantId.eq(tenant))
            .filter(segment::Column::Version.eq(current.version))
            .exec(&txn)
            .await?;
        if res.rows_affected == 1 {
            self.emit(&txn, tenant, events::segment_changed(&current, Change::Deleted)).await?;
            self.commit(txn).await?;
        } else {
            txn.rollback().await?;
            let now = self.get_segment(tenant, id).await?;
            check_etag(etag, now.version)?;
            return Err(Error::Aborted {
                reason: "CONCURRENT_UPDATE",
                message: format!("segment {id} changed; retry"),
            });
        }
        Ok(())
    }
}
