use banso_events::db::Versioned;
use chrono::{DateTime, Utc};

/// The settings every day bucket and period of a tenant is computed in.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSettings {
    /// IANA time zone name.
    pub time_zone: String,
    /// 1 to 12; 4 is April, as in most Japanese companies.
    pub fiscal_year_start_month: u32,
    pub default_currency_code: String,
    /// `None` until first changed (the defaults were never stored).
    pub update_time: Option<DateTime<Utc>>,
    pub version: i64,
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            time_zone: "UTC".into(),
            fiscal_year_start_month: 1,
            default_currency_code: "USD".into(),
            update_time: None,
            version: 0,
        }
    }
}

impl Versioned for TenantSettings {
    fn version(&self) -> i64 {
        self.version
    }

    fn advance(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.update_time = Some(now);
    }
}

banso_kit::field_paths! {
    /// What UpdateTenantSettings may change.
    pub enum SettingsField {
        TimeZone = "time_zone",
        FiscalYearStartMonth = "fiscal_year_start_month",
        DefaultCurrencyCode = "default_currency_code",
    }
}

impl TenantSettings {
    /// Copies the fields named in `mask` from `new`.
    pub fn apply(&mut self, new: &SettingsChange, mask: &[SettingsField]) {
        for field in mask {
            match field {
                SettingsField::TimeZone => self.time_zone = new.time_zone.clone(),
                SettingsField::FiscalYearStartMonth => self.fiscal_year_start_month = new.fiscal_year_start_month,
                SettingsField::DefaultCurrencyCode => self.default_currency_code = new.default_currency_code.clone(),
            }
        }
    }

    /// The tenant's time zone (validated when stored).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// The first day of the fiscal year that contains `date` (a test oracle
    /// for the periods of `retention`).
    #[cfg(test)]
    pub fn fiscal_year_start(&self, date: chrono::NaiveDate) -> Option<chrono::NaiveDate> {
        use chrono::Datelike;
        let m = self.fiscal_year_start_month;
        let year = if date.month() >= m { date.year() } else { date.year() - 1 };
        chrono::NaiveDate::from_ymd_opt(year, m, 1)
    }
}

/// The values an UpdateTenantSettings request sets, each valid.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsChange {
    pub time_zone: String,
    pub fiscal_year_start_month: u32,
    pub default_currency_code: String,
}

/// A valid IANA time zone name?
pub fn valid_time_zone(name: &str) -> bool {
    name.parse::<chrono_tz::Tz>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn fiscal_year_starting_in_april() {
        let s = TenantSettings { fiscal_year_start_month: 4, ..Default::default() };
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(s.fiscal_year_start(d(2025, 3, 31)), Some(d(2024, 4, 1)));
        assert_eq!(s.fiscal_year_start(d(2025, 4, 1)), Some(d(2025, 4, 1)));
        assert_eq!(TenantSettings::default().fiscal_year_start(d(2025, 3, 31)), Some(d(2025, 1, 1)));
    }

    #[test]
    fn time_zones() {
        assert!(valid_time_zone("Asia/Tokyo"));
        assert!(valid_time_zone("UTC"));
        assert!(!valid_time_zone("Mars/Olympus"));
        let s = TenantSettings { time_zone: "Asia/Tokyo".into(), ..Default::default() };
        assert_eq!(s.tz(), chrono_tz::Asia::Tokyo);
    }
}
