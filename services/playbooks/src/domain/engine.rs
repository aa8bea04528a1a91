//! Whether an event triggers a playbook, whether a schedule selects an
//! account, and whether a playbook whose condition held may fire now
//! (cooldown and enrolment limit).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{
    LifecycleStage,
    playbook::{Band, Definition, EnrolmentLimit, EventTrigger, ScheduleTrigger},
};

/// What a trigger reads of an event, taken from its payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Signal {
    pub event_type: String,
    /// `event_type`'s place in [`EVENT_TYPES`](super::playbook::EVENT_TYPES),
    /// compared instead of the string when both sides have one.
    pub event_index: Option<u8>,
    pub account_id: Option<Uuid>,
    pub old_band: Option<Band>,
    pub new_band: Option<Band>,
    pub old_score: Option<f64>,
    pub new_score: Option<f64>,
    /// Per measure: its value and its value over the window before.
    pub measures: BTreeMap<String, (Option<f64>, Option<f64>)>,
    /// The lifecycle stage the account entered with this event (created in
    /// it, or moved to it).
    pub stage_entered: Option<LifecycleStage>,
}

/// Whether the event triggers the playbook: its type, and each helper set.
pub(crate) fn triggers(t: &EventTrigger, s: &Signal) -> bool {
    t.event_type == s.event_type && helpers(t, s)
}

/// The place of an event type in [`EVENT_TYPES`](super::playbook::EVENT_TYPES).
pub(crate) fn event_index(event_type: &str) -> Option<u8> {
    super::playbook::EVENT_TYPES.iter().position(|t| *t == event_type).and_then(|i| u8::try_from(i).ok())
}

/// Whether the trigger's helpers hold for an event of its type.
pub(crate) fn helpers(t: &EventTrigger, s: &Signal) -> bool {
    if let Some(band) = t.band_became
        && !(s.new_band == Some(band) && s.old_band != Some(band))
    {
        return false;
    }
    if let Some(points) = t.score_fell_by {
        match (s.old_score, s.new_score) {
            (Some(old), Some(new)) if old - new >= points => {}
            _ => return false,
        }
    }
    if let Some(drop) = &t.measure_dropped {
        match s.measures.get(&drop.measure) {
            Some((Some(value), Some(previous))) if *previous > 0.0 => {
                if (previous - value) / previous * 100.0 < drop.percent {
                    return false;
                }
            }
            _ => return false,
        }
    }
    if let Some(stage) = t.stage_entered
        && s.stage_entered != Some(stage)
    {
        return false;
    }
    true
}

/// What a schedule condition reads of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Calendar {
    pub renewal_date: Option<NaiveDate>,
    /// The tenant-local day of its last usage event; `None`: never.
    pub last_usage_day: Option<NaiveDate>,
    /// The tenant-local day Banso first knew the account (for "no usage" of
    /// an account that never had any).
    pub known_since: NaiveDate,
    pub stage_since: NaiveDate,
    pub plans: PlanCalendar,
}

/// What a schedule condition reads of an account's active success plans
/// (over all of them: the earliest date, any off track).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PlanCalendar {
    /// The earliest due date of a checkpoint with no reading as of it.
    pub reading_due: Option<NaiveDate>,
    pub off_track: bool,
    /// The earliest end date of proxy work (代走) not done.
    pub proxy_end: Option<NaiveDate>,
    /// The tenant-local day the longest-standing plan entered its stage.
    pub stage_since: Option<NaiveDate>,
}

/// Whether a schedule condition selects an account today.
pub(crate) fn scheduled(s: ScheduleTrigger, c: &Calendar, today: NaiveDate) -> bool {
    let days = |from: NaiveDate| (today - from).num_days();
    match s {
        ScheduleTrigger::RenewalWithinDays(n) => {
            c.renewal_date.is_some_and(|r| (0..=i64::from(n)).contains(&(r - today).num_days()))
        }
        ScheduleTrigger::NoUsageForDays(n) => days(c.last_usage_day.unwrap_or(c.known_since)) >= i64::from(n),
        ScheduleTrigger::DaysInStage(n) => days(c.stage_since) >= i64::from(n),
        ScheduleTrigger::CheckpointOverdueDays(n) => c.plans.reading_due.is_some_and(|d| days(d) >= i64::from(n)),
        ScheduleTrigger::CheckpointOffTrack => c.plans.off_track,
        ScheduleTrigger::ProxyWorkOverdue => c.plans.proxy_end.is_some_and(|d| today > d),
        ScheduleTrigger::PlanStalledDays(n) => c.plans.stage_since.is_some_and(|d| days(d) >= i64::from(n)),
    }
}

/// What becomes of an evaluation whose audience and condition held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Fire,
    Cooldown,
    EnrolmentLimit,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Fire => "fired",
            Verdict::Cooldown => "cooldown",
            Verdict::EnrolmentLimit => "enrolment_limit",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [Verdict::Fire, Verdict::Cooldown, Verdict::EnrolmentLimit].into_iter().find(|v| v.as_str() == s)
    }
}

/// Whether the playbook may fire for an account at `now`, given the times
/// it fired for it before (every version). The enrolment limit is checked
/// first: a limit reached is the stronger reason.
pub(crate) fn verdict(def: &Definition, fired: &[DateTime<Utc>], now: DateTime<Utc>) -> Verdict {
    match def.enrolment_limit {
        Some(EnrolmentLimit::OncePerAccount) if !fired.is_empty() => return Verdict::EnrolmentLimit,
        Some(EnrolmentLimit::Rolling { times, days }) => {
            let since = now - chrono::Duration::days(i64::from(days));
            if fired.iter().filter(|t| **t > since).count() >= times as usize {
                return Verdict::EnrolmentLimit;
            }
        }
        _ => {}
    }
    if def.cooldown_secs > 0
        && let Some(last) = fired.iter().max()
        && now < *last + chrono::Duration::seconds(def.cooldown_secs)
    {
        return Verdict::Cooldown;
    }
    Verdict::Fire
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::playbook::{Audience, MeasureDrop, Routing, Trigger};

    fn def(cooldown_secs: i64, limit: Option<EnrolmentLimit>) -> Definition {
        Definition {
            display_name: "p".into(),
            description: String::new(),
            trigger: Trigger::Manual,
            audience: Audience::default(),
            condition: String::new(),
            actions: vec![],
            cooldown_secs,
            enrolment_limit: limit,
            priority: 0,
            routing: Routing::Dominant,
        }
    }

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap()
    }

    #[test]
    fn cooldown_suppresses_until_it_has_passed() {
        let d = def(24 * 3600, None);
        assert_eq!(verdict(&d, &[], at(0)), Verdict::Fire);
        assert_eq!(verdict(&d, &[at(0)], at(23)), Verdict::Cooldown);
        assert_eq!(verdict(&d, &[at(0)], at(24)), Verdict::Fire);
    }

    #[test]
    fn enrolment_limits_once_and_rolling() {
        let once = def(3600, Some(EnrolmentLimit::OncePerAccount));
        assert_eq!(verdict(&once, &[at(0)], at(1000)), Verdict::EnrolmentLimit);
        let rolling = def(3600, Some(EnrolmentLimit::Rolling { times: 2, days: 7 }));
        assert_eq!(verdict(&rolling, &[at(0)], at(2)), Verdict::Fire);
        assert_eq!(verdict(&rolling, &[at(0), at(2)], at(4)), Verdict::EnrolmentLimit);
        // The first firing left the 7-day window.
        assert_eq!(verdict(&rolling, &[at(0), at(2)], at(7 * 24 + 1)), Verdict::Fire);
    }

    fn health(old: (f64, Band), new: (f64, Band)) -> Signal {
        Signal {
            event_type: "health_score_changed".into(),
            old_score: Some(old.0),
            old_band: Some(old.1),
            new_score: Some(new.0),
            new_band: Some(new.1),
            ..Default::default()
        }
    }

    fn trigger() -> EventTrigger {
        EventTrigger {
            event_type: "health_score_changed".into(),
            band_became: None,
            score_fell_by: None,
            measure_dropped: None,
            stage_entered: None,
        }
    }

    #[test]
    fn band_became_red_fires_on_the_change_only() {
        let t = EventTrigger { band_became: Some(Band::Red), ..trigger() };
        assert!(triggers(&t, &health((50.0, Band::Yellow), (30.0, Band::Red))));
        assert!(!triggers(&t, &health((30.0, Band::Red), (20.0, Band::Red))));
        assert!(!triggers(&t, &health((50.0, Band::Yellow), (45.0, Band::Yellow))));
        let mut first = health((0.0, Band::Red), (30.0, Band::Red));
        first.old_band = None;
        first.old_score = None;
        assert!(triggers(&t, &first), "a first score in red is a change to red");
    }

    #[test]
    fn score_fell_by_and_the_usage_drop() {
        let t = EventTrigger { score_fell_by: Some(10.0), ..trigger() };
        assert!(triggers(&t, &health((70.0, Band::Green), (60.0, Band::Yellow))));
        assert!(!triggers(&t, &health((70.0, Band::Green), (60.1, Band::Yellow))));
        let t = EventTrigger {
            measure_dropped: Some(MeasureDrop { measure: "events_30d".into(), percent: 50.0 }),
            ..trigger()
        };
        let mut s = health((70.0, Band::Green), (68.0, Band::Green));
        s.measures.insert("events_30d".into(), (Some(40.0), Some(100.0)));
        assert!(triggers(&t, &s));
        s.measures.insert("events_30d".into(), (Some(60.0), Some(100.0)));
        assert!(!triggers(&t, &s));
        s.measures.insert("events_30d".into(), (Some(0.0), None));
        assert!(!triggers(&t, &s), "no previous window: no drop");
        s.event_type = "account_updated".into();
        assert!(!triggers(&trigger(), &s));
    }

    #[test]
    fn an_event_type_compared_by_index_agrees_with_the_string() {
        use crate::domain::playbook::EVENT_TYPES;
        for (i, a) in EVENT_TYPES.iter().enumerate() {
            assert_eq!(event_index(a), Some(i as u8));
            for b in EVENT_TYPES {
                let t = EventTrigger { event_type: (*a).into(), ..trigger() };
                let s = Signal { event_type: (*b).into(), event_index: event_index(b), ..Default::default() };
                let by_index = event_index(a) == s.event_index && helpers(&t, &s);
                assert_eq!(by_index, triggers(&t, &s), "{a} {b}");
            }
        }
        assert_eq!(event_index("cta_opened"), None, "a playbook's own effects are not triggers");
    }

    #[test]
    fn schedules_select_by_renewal_usage_and_stage() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let today = d(12, 4);
        let c = Calendar {
            renewal_date: Some(d(12, 30)),
            last_usage_day: Some(d(11, 20)),
            known_since: d(1, 1),
            stage_since: d(11, 4),
            plans: PlanCalendar::default(),
        };
        assert!(scheduled(ScheduleTrigger::RenewalWithinDays(26), &c, today));
        assert!(!scheduled(ScheduleTrigger::RenewalWithinDays(25), &c, today));
        assert!(scheduled(ScheduleTrigger::NoUsageForDays(14), &c, today));
        assert!(!scheduled(ScheduleTrigger::NoUsageForDays(15), &c, today));
        assert!(scheduled(ScheduleTrigger::DaysInStage(30), &c, today));
        assert!(!scheduled(ScheduleTrigger::DaysInStage(31), &c, today));
        let past = Calendar { renewal_date: Some(d(12, 1)), last_usage_day: None, ..c };
        assert!(!scheduled(ScheduleTrigger::RenewalWithinDays(90), &past, today), "a renewal already past is not near");
        assert!(
            scheduled(ScheduleTrigger::NoUsageForDays(300), &past, today),
            "never used: counted from when it was known"
        );
    }

    #[test]
    fn plan_schedules_read_due_readings_off_track_proxy_work_and_stalled_stages() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let today = d(12, 4);
        let mut c = Calendar {
            renewal_date: None,
            last_usage_day: None,
            known_since: d(1, 1),
            stage_since: d(1, 1),
            plans: PlanCalendar::default(),
        };
        for s in [
            ScheduleTrigger::CheckpointOverdueDays(0),
            ScheduleTrigger::CheckpointOffTrack,
            ScheduleTrigger::ProxyWorkOverdue,
            ScheduleTrigger::PlanStalledDays(1),
        ] {
            assert!(!scheduled(s, &c, today), "{s:?} without a plan");
        }
        c.plans = PlanCalendar {
            reading_due: Some(d(11, 27)),
            off_track: true,
            proxy_end: Some(d(12, 3)),
            stage_since: Some(d(11, 4)),
        };
        assert!(scheduled(ScheduleTrigger::CheckpointOverdueDays(7), &c, today));
        assert!(!scheduled(ScheduleTrigger::CheckpointOverdueDays(8), &c, today));
        assert!(scheduled(ScheduleTrigger::CheckpointOffTrack, &c, today));
        assert!(scheduled(ScheduleTrigger::ProxyWorkOverdue, &c, today));
        c.plans.proxy_end = Some(today);
        assert!(!scheduled(ScheduleTrigger::ProxyWorkOverdue, &c, today), "the end date itself is not past");
        assert!(scheduled(ScheduleTrigger::PlanStalledDays(30), &c, today));
        assert!(!scheduled(ScheduleTrigger::PlanStalledDays(31), &c, today));
    }
}
