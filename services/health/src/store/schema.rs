//! The tables of the `health` schema as typed identifiers: an enum per
//! table (its `Table` variant names the table, the others its columns) and,
//! per table, the one list of columns its rows are written with. Every query
//! of a table names its columns through its enum, so a renamed column is a
//! compile error, not a runtime one.

use sea_orm::DeriveIden;

/// The projection of Accounts' accounts ([`crate::domain::account::AccountRow`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum Accounts {
    Table,
    AccountId,
    TenantId,
    Deleted,
    UpdateTime,
    ExternalId,
    Name,
    LifecycleStage,
    TouchModel,
    ArrCurrency,
    ArrAmountMinor,
    RenewalDate,
    ContractStartDate,
    Industry,
    EmployeeCount,
    RevenueBand,
    Region,
    PlanTier,
    OwnerId,
    Tags,
    Attributes,
}

impl Accounts {
    /// What an [`AccountRow`](crate::domain::account::AccountRow) holds, in
    /// the order rows are read.
    pub(crate) const ROW: [Accounts; 17] = [
        Accounts::AccountId,
        Accounts::ExternalId,
        Accounts::Name,
        Accounts::LifecycleStage,
        Accounts::TouchModel,
        Accounts::ArrCurrency,
        Accounts::ArrAmountMinor,
        Accounts::RenewalDate,
        Accounts::ContractStartDate,
        Accounts::Industry,
        Accounts::EmployeeCount,
        Accounts::RevenueBand,
        Accounts::Region,
        Accounts::PlanTier,
        Accounts::OwnerId,
        Accounts::Tags,
        Accounts::Attributes,
    ];
}

/// Per tenant: its time zone, from TenantSettingsChanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum Tenants {
    Table,
    TenantId,
    TimeZone,
    FiscalYearStartMonth,
}

/// E-mails sent and replied, from ActivityLogged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum EmailActivities {
    Table,
    ActivityId,
    TenantId,
    AccountId,
    Replied,
    OccurTime,
}

/// Accounts' segments: id and CEL expression, from SegmentChanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum Segments {
    Table,
    SegmentId,
    TenantId,
    Expression,
}

/// Raw usage events, kept for the retention; the key makes ingest idempotent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum UsageEvents {
    Table,
    TenantId,
    EventId,
    AccountId,
    UserKey,
    EventName,
    OccurTime,
    Day,
    Quantity,
    DurationSecs,
    Properties,
    IngestTime,
}

impl UsageEvents {
    /// A stored event's columns, in the order the COPY and the INSERT write them.
    pub(crate) const ROW: [UsageEvents; 11] = [
        UsageEvents::TenantId,
        UsageEvents::EventId,
        UsageEvents::AccountId,
        UsageEvents::UserKey,
        UsageEvents::EventName,
        UsageEvents::OccurTime,
        UsageEvents::Day,
        UsageEvents::Quantity,
        UsageEvents::DurationSecs,
        UsageEvents::Properties,
        UsageEvents::IngestTime,
    ];
}

/// One row per acknowledged batch: the rollup task's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum IngestBatches {
    Table,
    TenantId,
    IngestTime,
    Events,
    RolledUpTime,
}

/// Per account, day (in the tenant's zone) and event name: sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum DailyUsage {
    Table,
    TenantId,
    AccountId,
    Day,
    EventName,
    Events,
    Quantity,
    DurationSecs,
}

/// Per account: the latest day (the tenant's) of its rolled-up usage, the
/// last one UsageSeen published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum LastUsage {
    Table,
    TenantId,
    AccountId,
    Day,
}

/// Per account, day and event name: the distinct users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum DailyUsers {
    Table,
    TenantId,
    AccountId,
    Day,
    EventName,
    UserKey,
}

/// Per tenant: the days each event name was used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum EventNameDays {
    Table,
    TenantId,
    Day,
    EventName,
}

/// External measure values set with SetMeasureValue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum MeasureValues {
    Table,
    TenantId,
    AccountId,
    Measure,
    Value,
    ObserveTime,
}

/// Each scored account's latest raw value of each measure of its
/// scorecard: the percentile populations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum MeasureSnapshots {
    Table,
    TenantId,
    Measure,
    AccountId,
    Value,
}

/// The current version of each scorecard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum Scorecards {
    Table,
    Id,
    TenantId,
    Version,
    Definition,
    CreateTime,
    UpdateTime,
}

impl Scorecards {
    /// What a stored scorecard is read from.
    pub(crate) const ROW: [Scorecards; 5] =
        [Scorecards::Id, Scorecards::Version, Scorecards::Definition, Scorecards::CreateTime, Scorecards::UpdateTime];
}

/// Every version of every scorecard (the current one too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum ScorecardVersions {
    Table,
    Id,
    Version,
    TenantId,
    Definition,
    CreateTime,
}

/// Each scored account's current health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum AccountHealth {
    Table,
    AccountId,
    TenantId,
    Score,
    Band,
    ScorecardId,
    ScorecardVersion,
    Contributions,
    ComputeTime,
    #[sea_orm(iden = "change_7d")]
    Change7d,
    #[sea_orm(iden = "change_30d")]
    Change30d,
    ReadMicros,
}

impl AccountHealth {
    /// What a stored health is read from.
    pub(crate) const ROW: [AccountHealth; 10] = [
        AccountHealth::AccountId,
        AccountHealth::Score,
        AccountHealth::Band,
        AccountHealth::ScorecardId,
        AccountHealth::ScorecardVersion,
        AccountHealth::Contributions,
        AccountHealth::ComputeTime,
        AccountHealth::Change7d,
        AccountHealth::Change30d,
        AccountHealth::ReadMicros,
    ];
}

/// Daily snapshots and band changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum HealthHistory {
    Table,
    Id,
    TenantId,
    AccountId,
    Day,
    Kind,
    Score,
    Band,
    RecordTime,
}

impl HealthHistory {
    /// What a history point is read from.
    pub(crate) const ROW: [HealthHistory; 6] = [
        HealthHistory::Id,
        HealthHistory::Day,
        HealthHistory::Kind,
        HealthHistory::Score,
        HealthHistory::Band,
        HealthHistory::RecordTime,
    ];
}

/// Recompute jobs: state, progress, lease and cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum RecomputeJobs {
    Table,
    Id,
    TenantId,
    State,
    Trigger,
    AccountsTotal,
    AccountsDone,
    AccountsScored,
    ScoresChanged,
    CreateTime,
    StartTime,
    EndTime,
    Error,
    Cursor,
    HeartbeatTime,
}

impl RecomputeJobs {
    /// What a job is read from.
    pub(crate) const ROW: [RecomputeJobs; 13] = [
        RecomputeJobs::Id,
        RecomputeJobs::TenantId,
        RecomputeJobs::State,
        RecomputeJobs::Trigger,
        RecomputeJobs::AccountsTotal,
        RecomputeJobs::AccountsDone,
        RecomputeJobs::AccountsScored,
        RecomputeJobs::ScoresChanged,
        RecomputeJobs::CreateTime,
        RecomputeJobs::StartTime,
        RecomputeJobs::EndTime,
        RecomputeJobs::Error,
        RecomputeJobs::Cursor,
    ];
}

/// Labelled outcomes per account, from ContractChanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum AccountOutcomes {
    Table,
    TenantId,
    EventId,
    AccountId,
    Kind,
    Expansion,
    EffectiveDate,
    Currency,
    ArrBefore,
    ArrAfter,
    RecordTime,
}

impl AccountOutcomes {
    /// What an outcome is read from.
    pub(crate) const ROW: [AccountOutcomes; 8] = [
        AccountOutcomes::EventId,
        AccountOutcomes::AccountId,
        AccountOutcomes::Kind,
        AccountOutcomes::Expansion,
        AccountOutcomes::EffectiveDate,
        AccountOutcomes::Currency,
        AccountOutcomes::ArrBefore,
        AccountOutcomes::ArrAfter,
    ];
}

/// Each account's latest churn probability and bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum AccountChurnRisk {
    Table,
    TenantId,
    AccountId,
    Probability,
    Bucket,
    UpdateTime,
    /// The churn model version that scored it.
    ModelVersion,
    /// What pushes the risk up, most first: JSON `[[feature, contribution]…]`.
    Reasons,
}

/// Each account's latest expansion probability and bucket, per target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum AccountExpansionSignal {
    Table,
    TenantId,
    AccountId,
    /// expansion, upsell or cross_sell.
    Target,
    Probability,
    Bucket,
    ModelVersion,
    /// As in account_churn_risk.
    Reasons,
    UpdateTime,
}

/// Every churn model a tenant trained, by version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum ChurnModels {
    Table,
    TenantId,
    Version,
    /// The trained model as JSON.
    Model,
    CreateTime,
    /// What it predicts (`Target::as_str`), also in the JSON.
    Target,
}

/// Each contact's latest survey answer per account and kind, from
/// Feedback's SurveyAnswered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum SurveyAnswers {
    Table,
    TenantId,
    AccountId,
    /// `SurveyKind::as_str`: nps, csat, ces or outcome.
    Kind,
    ContactId,
    Score,
    AnsweredAt,
    AnswerId,
    /// Within the window when the kind's measure was last computed.
    Counted,
}

/// Names of computed columns (`COUNT(*) AS n`, …) and of the second
/// reference to a table in one query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, DeriveIden)]
pub(crate) enum Out {
    /// A count.
    N,
    /// The oldest of some times.
    Oldest,
    /// The inner `health_history` of a correlated subquery.
    Latest,
    /// An account's usage over many days, as one JSON text.
    Usage,
    /// An account's rows of some table, as one JSON text.
    Rows,
}
