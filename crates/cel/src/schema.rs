use std::collections::BTreeMap;

/// What is known, before evaluation, about the value of a variable or field.
///
/// Any value may also be `null`; shapes only say which fields exist and
/// whether the macros (`exists`, `all`, `map`, …) can iterate it.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Nothing is known; nothing below it is checked.
    Any,
    Bool,
    Int,
    Double,
    String,
    Timestamp,
    /// One of bool, int, double, string or timestamp, not known which (a
    /// custom attribute).
    Scalar,
    List(Box<Shape>),
    /// A map whose keys are data, not schema (custom attributes): any key may
    /// be read, and each value has the inner shape.
    Map(Box<Shape>),
    /// A map with a fixed set of fields; reading any other is a compile error.
    Record(BTreeMap<String, Shape>),
}

impl Shape {
    /// A record with the given fields.
    pub fn record<'a>(fields: impl IntoIterator<Item = (&'a str, Shape)>) -> Shape {
        Shape::Record(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// The type name used in messages, for shapes that cannot be iterated or
    /// selected from.
    pub(crate) fn scalar_name(&self) -> Option<&'static str> {
        match self {
            Shape::Bool => Some("bool"),
            Shape::Int => Some("int"),
            Shape::Double => Some("double"),
            Shape::String => Some("string"),
            Shape::Timestamp => Some("timestamp"),
            Shape::Scalar => Some("scalar (bool, int, double, string or timestamp)"),
            _ => None,
        }
    }
}

/// Which top-level variables (and, for maps with a fixed shape, which fields)
/// exist, and the most an evaluation may cost. An expression is checked
/// against it when compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    variables: BTreeMap<String, Shape>,
    cost_limit: u64,
}

/// No variables; the cost limit [`COST_LIMIT`](crate::COST_LIMIT).
impl Default for Schema {
    fn default() -> Self {
        Schema { variables: BTreeMap::new(), cost_limit: crate::COST_LIMIT }
    }
}

impl Schema {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the cost limit ([`COST_LIMIT`](crate::COST_LIMIT) unless
    /// set): an expression whose [`Expression::cost`](crate::Expression::cost)
    /// exceeds it does not compile. `u64::MAX` accepts every expression.
    pub fn with_cost_limit(mut self, limit: u64) -> Self {
        self.cost_limit = limit;
        self
    }

    /// The most an evaluation may cost, in the units of
    /// [`Expression::cost`](crate::Expression::cost).
    pub fn cost_limit(&self) -> u64 {
        self.cost_limit
    }

    /// Declares a top-level variable.
    pub fn with_variable(mut self, name: impl Into<String>, shape: Shape) -> Self {
        self.variables.insert(name.into(), shape);
        self
    }

    pub fn variable(&self, name: &str) -> Option<&Shape> {
        self.variables.get(name)
    }

    /// Variable names, sorted.
    pub fn variable_names(&self) -> impl Iterator<Item = &str> {
        self.variables.keys().map(String::as_str)
    }
}

/// The fields of the `account` variable, in the order the docs list them.
pub const ACCOUNT_FIELDS: &[&str] = &[
    "name",
    "external_id",
    "industry",
    "employee_count",
    "revenue_band",
    "region",
    "plan_tier",
    "lifecycle_stage",
    "touch_model",
    "owner_id",
    "arr",
    "arr_currency",
    "contract_start_date",
    "renewal_date",
    "tags",
    "attributes",
    "days_to_renewal",
];

fn account_field_shape(field: &str) -> Shape {
    match field {
        "employee_count" | "arr" | "days_to_renewal" => Shape::Int,
        "contract_start_date" | "renewal_date" => Shape::Timestamp,
        "tags" => Shape::List(Box::new(Shape::String)),
        "attributes" => Shape::Map(Box::new(Shape::Scalar)),
        _ => Shape::String,
    }
}

/// The environment segments (and Health's scorecard scopes) are written
/// against: `account` (see the crate docs) and `now`. Playbook conditions
/// use [`playbook_schema`], a superset.
pub fn account_schema() -> Schema {
    let account = Shape::record(ACCOUNT_FIELDS.iter().map(|f| (*f, account_field_shape(f))));
    Schema::new().with_variable("account", account).with_variable("now", Shape::Timestamp)
}

/// The touch patterns of `account.touch_mix`, as `TouchModel::as_str()` writes them.
pub const TOUCH_PATTERNS: &[&str] = &["high", "low", "tech"];

/// The fields of each entry of `health.measures`.
pub const MEASURE_FIELDS: &[&str] = &["value", "previous_value", "points"];

/// The environment playbook conditions are written against: `account` (the
/// record of [`account_schema`] plus `touch_mix` and `stage_days`), `health`,
/// `event` and `now`; see the crate docs and docs/cel.md.
pub fn playbook_schema() -> Schema {
    let mut account = match account_schema().variable("account") {
        Some(Shape::Record(fields)) => fields.clone(),
        _ => BTreeMap::new(),
    };
    let touch_mix = Shape::record(TOUCH_PATTERNS.iter().map(|p| (*p, Shape::Int)));
    account.insert("touch_mix".into(), touch_mix);
    account.insert("stage_days".into(), Shape::Int);
    let measure = Shape::record(MEASURE_FIELDS.iter().map(|f| (*f, Shape::Double)));
    let health = Shape::record([
        ("score", Shape::Double),
        ("band", Shape::String),
        ("trend_7d", Shape::Double),
        ("trend_30d", Shape::Double),
        ("measures", Shape::Map(Box::new(measure))),
    ]);
    let event = Shape::record([
        ("type", Shape::String),
        ("id", Shape::String),
        ("occurred_at", Shape::Timestamp),
        ("data", Shape::Any),
    ]);
    Schema::new()
        .with_variable("account", Shape::Record(account))
        .with_variable("health", health)
        .with_variable("event", event)
        .with_variable("now", Shape::Timestamp)
}
