//! External measure values on the wire.

use banso_kit::{Result, Violations, shown, wire};
use banso_proto::health as pb;

use crate::{app::measures::SetMeasure, domain::measure::is_external_name};

pub(crate) fn set(r: pb::SetMeasureValueRequest) -> Result<SetMeasure> {
    let mut v = Violations::new();
    let account = v.take(wire::uuid("account_id", &r.account_id));
    v.check(
        !is_external_name(&r.measure),
        "measure",
        format!("must be 1 to 64 of [a-z0-9_], got {}", shown(&r.measure)),
    );
    if let Some(x) = r.value {
        v.check(!x.is_finite(), "value", format!("must be a finite number, got {x}"));
    }
    let observe_time = wire::optional_time(&mut v, "observe_time", r.observe_time.as_ref());
    let account = v.finish_with(account)?;
    Ok(SetMeasure { account, measure: r.measure, value: r.value, observe_time: observe_time.unwrap_or_else(wire::now) })
}

pub(crate) fn to_proto(m: &SetMeasure) -> pb::SetMeasureValueResponse {
    pb::SetMeasureValueResponse {
        account_id: m.account.to_string(),
        measure: format!("external:{}", m.measure),
        value: m.value,
    }
}
