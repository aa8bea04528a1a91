//! Tenant settings on the wire.

use banso_kit::{Result, Violations, etag, fieldmask, shown, wire};
use banso_proto::accounts as pb;

use super::convert::required;
use crate::{
    app::UpdateSettings,
    domain::{SettingsChange, SettingsField, TenantSettings, valid_time_zone, validate},
};

pub(crate) fn to_proto(s: &TenantSettings) -> pb::TenantSettings {
    pb::TenantSettings {
        time_zone: s.time_zone.clone(),
        fiscal_year_start_month: i32::try_from(s.fiscal_year_start_month).unwrap_or(1),
        default_currency_code: s.default_currency_code.clone(),
        update_time: s.update_time.map(wire::timestamp),
        etag: etag::of(s.version),
    }
}

pub(crate) fn update(r: pb::UpdateTenantSettingsRequest) -> Result<UpdateSettings> {
    let mut v = Violations::new();
    let mask = v.take(fieldmask::parse::<SettingsField>("update_mask", r.update_mask.as_ref()));
    let p = required(&mut v, "settings", r.settings.as_ref());
    let etag = p.and_then(|p| v.take(etag::parse("settings.etag", &p.etag)));
    let mut values =
        SettingsChange { time_zone: String::new(), fiscal_year_start_month: 1, default_currency_code: String::new() };
    if let (Some(p), Some(mask)) = (p, mask.as_deref()) {
        for field in mask {
            match field {
                SettingsField::TimeZone => {
                    if !valid_time_zone(&p.time_zone) {
                        v.add(
                            "settings.time_zone",
                            format!("{} is not an IANA time zone (e.g. Asia/Tokyo)", shown(&p.time_zone)),
                        );
                    }
                    values.time_zone = p.time_zone.clone();
                }
                SettingsField::FiscalYearStartMonth => {
                    match u32::try_from(p.fiscal_year_start_month).ok().filter(|m| (1..=12).contains(m)) {
                        Some(m) => values.fiscal_year_start_month = m,
                        None => v.add(
                            "settings.fiscal_year_start_month",
                            format!("must be 1 to 12, got {}", p.fiscal_year_start_month),
                        ),
                    }
                }
                SettingsField::DefaultCurrencyCode => {
                    validate::currency(&mut v, "settings.default_currency_code", &p.default_currency_code);
                    values.default_currency_code = p.default_currency_code.clone();
                }
            }
        }
    }
    let (mask, etag) = v.finish_with((mask, etag))?;
    Ok(UpdateSettings { etag, mask, values })
}
