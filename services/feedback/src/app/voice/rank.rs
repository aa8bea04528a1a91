//! Target selection: reads the segment, its contacts, every theme and
//! every theme's mentions once, and hands them to
//! [`crate::domain::rank::rank`].

use std::collections::HashSet;

use banso_kit::{Error, Result, auth::Caller};
use uuid::Uuid;

use crate::{
    app::App,
    domain::{
        projection::{Band, Projected},
        rank::{Mention, Ranked, SegmentAccount, ThemeToRank, Weights, WeightsGiven, rank},
        survey::{NpsCategory, nps_category},
    },
    store,
};

/// What RankThemes asks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RankThemes {
    /// Within this segment's accounts; every live account without one.
    pub segment: Option<Uuid>,
    /// Over the tenant's weights, which are over the defaults.
    pub weights: WeightsGiven,
}

/// The themes ranked, and the weights used.
#[derive(Debug, Clone)]
pub(crate) struct Ranking {
    pub themes: Vec<Ranked>,
    pub weights: Weights,
}

impl App {
    /// Every theme of the tenant with every factor of its priority within
    /// the segment, highest priority first.
    pub(crate) async fn rank_themes(&self, caller: &Caller, cmd: RankThemes) -> Result<Ranking> {
        let conn = self.db.conn();
        let tenant = caller.tenant_id.as_str();
        // The reads are independent: at once, each on a connection of its own.
        let segment = async {
            match cmd.segment {
                Some(id) => {
                    if store::projection::segment(conn, tenant, id).await?.is_none() {
                        return Err(Error::not_found("segment", id.to_string()));
                    }
                    self.segment_accounts(tenant, id).await
                }
                None => store::projection::accounts(conn, tenant, None).await,
            }
        };
        let (projected, settings, tenant_row, themes, rows) = tokio::try_join!(
            segment,
            store::tenants::voice_settings(conn, tenant),
            store::tenants::get(conn, tenant),
            store::voice::all_themes(conn, tenant),
            store::rank::mentions(conn, tenant),
        )?;
        let weights = cmd.weights.over(settings.weights);
        let ids: Vec<Uuid> = projected.iter().map(|p| p.account.id).collect();
        let (contacts, nps) = tokio::try_join!(
            store::projection::contacts_of(conn, tenant, &ids),
            store::rank::latest_nps(conn, tenant, &ids),
        )?;
        let champions: HashSet<Uuid> = contacts.iter().filter(|c| c.champion).map(|c| c.account_id).collect();
        let contacts: HashSet<Uuid> = contacts.iter().map(|c| c.id).collect();
        let accounts: Vec<SegmentAccount> = projected
            .into_iter()
            .map(|p: Projected| {
                let id = p.account.id;
                SegmentAccount {
                    id,
                    arr: p.account.arr_currency.zip(p.account.arr_minor),
                    red: p.band == Some(Band::Red),
                    detractor: nps.get(&id).is_some_and(|s| nps_category(f64::from(*s)) == NpsCategory::Detractor),
                    health: p.score,
                    has_champion: champions.contains(&id),
                }
            })
            .collect();
        let themes: Vec<ThemeToRank> = themes
            .into_iter()
            .map(|t| ThemeToRank { id: t.id, display_name: t.body.display_name, assessment: t.body.assessment })
            .collect();
        let cal = tenant_row.calendar();
        let in_segment: HashSet<Uuid> = accounts.iter().map(|a| a.id).collect();
        let mentions = rows.into_iter().filter(|m| in_segment.contains(&m.account_id)).map(|m| {
            let mention = Mention {
                account: m.account_id,
                contact: m.contact_id,
                day: cal.day(m.mention_time),
                severity: m.severity,
            };
            (m.theme_id, mention)
        });
        let themes = rank(&themes, &accounts, &contacts, mentions, &weights);
        Ok(Ranking { themes, weights })
    }
}
