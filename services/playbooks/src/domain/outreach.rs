//! Outreach webhooks, the pure rules: which URLs and addresses an endpoint
//! may reach (the SSRF guard), the signature, the retry schedule, which
//! contacts a message is about, and the fatigue budget.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// The prefix of every signing secret.
pub(crate) const SECRET_PREFIX: &str = "whsec_";

/// How long the previous secret keeps signing after a rotation.
pub(crate) const ROTATION_OVERLAP: chrono::Duration = chrono::Duration::hours(24);

/// The most a retry waits.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(3600);

/// A new signing secret: `whsec_` and 32 random bytes in base64url.
pub(crate) fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The `Banso-Signature` header: `t=<unix>,v1=<hex>` with one `v1` per
/// secret, each the HMAC-SHA256 of `"<t>.<body>"` keyed by the secret's
/// text (prefix included).
pub(crate) fn signature_header(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut out = format!("t={t}");
    for s in secrets {
        out.push_str(",v1=");
        out.push_str(&sign(s, t, body));
    }
    out
}

/// The hex HMAC-SHA256 of `"<t>.<body>"` under `secret`.
pub(crate) fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length: this never fails.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The delay before retry `attempt` (1 after the first failure): full
/// jitter, a uniform draw from 0 to min(cap, base × 2^(attempt−1)).
/// `draw` is in [0, 1).
pub(crate) fn backoff(base: Duration, cap: Duration, attempt: u32, draw: f64) -> Duration {
    let ceiling = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30))).min(cap);
    ceiling.mul_f64(draw.clamp(0.0, 1.0))
}

/// Why an address may not be reached, or `None` if it may.
pub(crate) fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address inside IPv6 (mapped ::ffff:a.b.c.d, or NAT64's
            // 64:ff9b::/96) is judged as that IPv4 address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let o = v6.octets();
                return forbidden_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            forbidden_v6(v6)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        [0, ..] => "unspecified (0.0.0.0/8)",
        [127, ..] => "loopback",
        [10, ..] => "private (RFC 1918)",
        [172, b, ..] if (16..32).contains(&b) => "private (RFC 1918)",
        [192, 168, ..] => "private (RFC 1918)",
        [169, 254, ..] => "link-local (169.254.0.0/16, cloud metadata)",
        [100, b, ..] if (64..128).contains(&b) => "shared address space (CGNAT, 100.64.0.0/10)",
        [192, 0, 0, _] => "IETF protocol assignments (192.0.0.0/24)",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation",
        [198, b, ..] if b == 18 || b == 19 => "benchmarking (198.18.0.0/15)",
        [255, 255, 255, 255] => "broadcast",
        [a, ..] if (224..240).contains(&a) => "multicast",
        [a, ..] if a >= 240 => "reserved (240.0.0.0/4)",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_loopback() {
        "loopback"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "private (unique local, fc00::/7)"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "link-local (fe80::/10)"
    } else if s[0] & 0xffc0 == 0xfec0 {
        "site-local (fec0::/10)"
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation (2001:db8::/32)"
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        "discard-only (100::/64)"
    } else if s[0..5] == [0, 0, 0, 0, 0] && s[5] == 0 {
        // ::a.b.c.d, the deprecated IPv4-compatible form.
        "IPv4-compatible (::/96)"
    } else {
        return None;
    })
}

/// What the guard allows, from the service's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UrlPolicy {
    /// `BANSO_PLAYBOOKS_WEBHOOK_ALLOW_HTTP`.
    pub allow_http: bool,
    /// `BANSO_PLAYBOOKS_WEBHOOK_ALLOW_PRIVATE`.
    pub allow_private: bool,
}

/// The most characters a webhook URL may have.
pub(crate) const MAX_URL_CHARS: usize = 2048;

/// Checks a webhook URL on save: absolute http(s) with a host, https unless
/// allowed, no credentials, and a host that is an IP address must be allowed.
pub(crate) fn check_url(raw: &str, policy: UrlPolicy) -> Result<reqwest::Url, String> {
    if raw.trim().is_empty() {
        return Err("is required: an https URL".into());
    }
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(format!("must be at most {MAX_URL_CHARS} characters, got {}", raw.chars().count()));
    }
    let shown = banso_kit::shown(raw);
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("{shown} is not a URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => {
            return Err(format!(
                "{shown} must use https (http is allowed only with BANSO_PLAYBOOKS_WEBHOOK_ALLOW_HTTP)"
            ));
        }
        other => return Err(format!("{shown} must be an https URL, not {other}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{shown} must not carry credentials; receivers verify the signature instead"));
    }
    if url.fragment().is_some() {
        return Err(format!("{shown} must not have a fragment"));
    }
    let Some(host) = url.host_str() else { return Err(format!("{shown} has no host")) };
    match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => refuse(&shown, ip, policy)?,
        Err(_) => {
            let d = host.trim_end_matches('.').to_ascii_lowercase();
            if !policy.allow_private && (d == "localhost" || d.ends_with(".localhost")) {
                return Err(format!("{shown} points to loopback (localhost), which webhooks may not reach"));
            }
        }
    }
    Ok(url)
}

fn refuse(shown: &str, ip: IpAddr, policy: UrlPolicy) -> Result<(), String> {
    match forbidden(ip) {
        Some(why) if !policy.allow_private => {
            Err(format!("{shown} points to {ip}, a {why} address, which webhooks may not reach"))
        }
        _ => Ok(()),
    }
}

/// The roles a send_outreach action may pick contacts by.
pub(crate) const ROLES: &[&str] = &["champion", "decision_maker", "executive", "manager", "practitioner"];

/// A contact as Accounts' ContactChanged carries it: what outreach needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Contact {
    pub id: Uuid,
    pub account_id: Uuid,
    pub name: String,
    pub email: String,
    pub title: String,
    pub champion: bool,
    pub decision_maker: bool,
    /// "executive", "manager", "practitioner", or empty.
    pub level: String,
}

impl Contact {
    /// Whether the contact has one of `roles`; no roles: the primary
    /// contacts, champions and decision makers.
    pub(crate) fn picked(&self, roles: &[String]) -> bool {
        if roles.is_empty() {
            return self.champion || self.decision_maker;
        }
        roles.iter().any(|r| match r.as_str() {
            "champion" => self.champion,
            "decision_maker" => self.decision_maker,
            level => !self.level.is_empty() && self.level == level,
        })
    }
}

/// The most contacts one action sends to; more are left out (and the
/// outcome says so).
pub(crate) const MAX_CONTACTS_PER_ACTION: usize = 50;

/// Who a message counts against in the fatigue budget: the contact, or the
/// account for a message about no contact.
pub(crate) fn fatigue_key(account: Uuid, contact: Option<Uuid>) -> String {
    match contact {
        Some(c) => format!("contact:{c}"),
        None => format!("account:{account}"),
    }
}

/// The fatigue budget: whether one more message fits, given the messages
/// already queued in the window. `Err` is the outcome's detail.
pub(crate) fn within_budget(
    already: i64,
    max: i32,
    window_days: i32,
    account: Uuid,
    contact: Option<Uuid>,
) -> Result<(), String> {
    if already < i64::from(max) {
        return Ok(());
    }
    let whom = match contact {
        Some(c) => format!("contact {c}"),
        None => format!("account {account} (no contact)"),
    };
    Err(format!("fatigue budget: {already} messages in {window_days} days to {whom}"))
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliveryStatus {
    Pending,
    Succeeded,
    Dead,
    Skipped,
}

impl DeliveryStatus {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Dead => "dead",
            DeliveryStatus::Skipped => "skipped",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Dead, Self::Skipped].into_iter().find(|x| x.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_refuses_internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(forbidden(ip.parse().unwrap()).is_some(), "{ip} must be refused");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(forbidden(ip.parse().unwrap()).is_none(), "{ip} must be allowed");
        }
    }

    #[test]
    fn urls_are_checked_on_save() {
        let strict = UrlPolicy::default();
        assert!(check_url("https://hooks.example.com/banso", strict).is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://10.0.0.1/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]:8443/x",
            "https://localhost/x",
            "ftp://example.com/x",
            "https://user:pw@example.com/x",
            "not a url",
            "",
        ] {
            assert!(check_url(bad, strict).is_err(), "{bad:?} must be refused");
        }
        let e = check_url("https://10.0.0.1/x", strict).unwrap_err();
        assert!(e.contains("10.0.0.1") && e.contains("private"), "{e}");
        let open = UrlPolicy { allow_http: true, allow_private: true };
        assert!(check_url("http://127.0.0.1:8080/hook", open).is_ok());
    }

    #[test]
    fn signatures_are_hmac_sha256_of_time_dot_body() {
        // RFC 4231-style check against an independent computation:
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"The quick brown fox jumps over the lazy dog");
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
        let h = signature_header(&["whsec_a", "whsec_b"], 1_700_000_000, b"{}");
        assert_eq!(
            h,
            format!(
                "t=1700000000,v1={},v1={}",
                sign("whsec_a", 1_700_000_000, b"{}"),
                sign("whsec_b", 1_700_000_000, b"{}")
            )
        );
        assert_ne!(sign("whsec_a", 1, b"x"), sign("whsec_a", 2, b"x"));
        let s = new_secret();
        assert!(s.starts_with("whsec_") && s.len() == 6 + 43, "{s}");
    }

    #[test]
    fn backoff_is_exponential_capped_and_jittered() {
        let base = Duration::from_secs(5);
        assert_eq!(backoff(base, MAX_DELAY, 1, 0.999_999).as_secs(), 4);
        assert_eq!(backoff(base, MAX_DELAY, 3, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(base, MAX_DELAY, 20, 0.5), Duration::from_secs(1800), "capped at an hour");
        assert_eq!(backoff(base, MAX_DELAY, 1, 0.0), Duration::ZERO);
        assert_eq!(backoff(base, MAX_DELAY, u32::MAX, 1.0), MAX_DELAY);
    }

    #[test]
    fn contacts_are_picked_by_role_and_the_budget_holds() {
        let c = Contact {
            id: Uuid::nil(),
            account_id: Uuid::nil(),
            name: "Ann".into(),
            email: "ann@example.com".into(),
            title: String::new(),
            champion: true,
            decision_maker: false,
            level: "manager".into(),
        };
        assert!(c.picked(&[]));
        assert!(c.picked(&["manager".into()]));
        assert!(!c.picked(&["decision_maker".into(), "executive".into()]));
        assert!(within_budget(2, 3, 7, Uuid::nil(), Some(c.id)).is_ok());
        let e = within_budget(3, 3, 7, Uuid::nil(), Some(c.id)).unwrap_err();
        assert_eq!(e, format!("fatigue budget: 3 messages in 7 days to contact {}", c.id));
    }
}
