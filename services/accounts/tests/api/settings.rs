//! Tenant settings: defaults, admin-only changes, validation, etags.

use banso_proto::accounts as pb;
use tonic::Code;

use crate::common::*;

#[tokio::test]
async fn defaults_then_admin_changes_them() {
    let app = spawn().await;
    let mut c = admin(&app);
    let s = c.get_tenant_settings(pb::GetTenantSettingsRequest {}).await.unwrap().into_inner();
    assert_eq!((s.time_zone.as_str(), s.fiscal_year_start_month, s.default_currency_code.as_str()), ("UTC", 1, "USD"));

    let new = pb::TenantSettings {
        time_zone: "Asia/Tokyo".into(),
        fiscal_year_start_month: 4,
        default_currency_code: "JPY".into(),
        etag: s.etag.clone(),
        ..Default::default()
    };
    let updated = c
        .update_tenant_settings(pb::UpdateTenantSettingsRequest { settings: Some(new.clone()), update_mask: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.time_zone.as_str(), updated.fiscal_year_start_month, updated.default_currency_code.as_str()),
        ("Asia/Tokyo", 4, "JPY")
    );
    // The old etag is now stale.
    let err = c
        .update_tenant_settings(pb::UpdateTenantSettingsRequest { settings: Some(new), update_mask: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    // A masked update changes one field.
    let only_month = pb::TenantSettings { fiscal_year_start_month: 10, ..Default::default() };
    let s = c
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            settings: Some(only_month),
            update_mask: mask(&["fiscal_year_start_month"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((s.time_zone.as_str(), s.fiscal_year_start_month), ("Asia/Tokyo", 10));
    // Settings are per tenant.
    let mut other = client(&app, "globex", Role::Viewer);
    let theirs = other.get_tenant_settings(pb::GetTenantSettingsRequest {}).await.unwrap().into_inner();
    assert_eq!(theirs.time_zone, "UTC");
}

#[tokio::test]
async fn only_admins_change_settings_and_values_are_checked() {
    let app = spawn().await;
    let mut csm = client(&app, "acme", Role::Csm);
    let req = pb::UpdateTenantSettingsRequest {
        settings: Some(pb::TenantSettings { time_zone: "Asia/Tokyo".into(), ..Default::default() }),
        update_mask: mask(&["time_zone"]),
    };
    assert_eq!(csm.update_tenant_settings(req).await.unwrap_err().code(), Code::PermissionDenied);

    let mut c = admin(&app);
    let bad = pb::TenantSettings {
        time_zone: "Tokyo".into(),
        fiscal_year_start_month: 13,
        default_currency_code: "YEN".into(),
        ..Default::default()
    };
    let err = c
        .update_tenant_settings(pb::UpdateTenantSettingsRequest { settings: Some(bad), update_mask: None })
        .await
        .unwrap_err();
    let fields: Vec<String> = violations(&err).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["settings.time_zone", "settings.fiscal_year_start_month", "settings.default_currency_code"]);
    let err = c
        .update_tenant_settings(pb::UpdateTenantSettingsRequest { settings: None, update_mask: None })
        .await
        .unwrap_err();
    assert_violation(&err, "settings");
    let err = c
        .update_tenant_settings(pb::UpdateTenantSettingsRequest {
            settings: Some(Default::default()),
            update_mask: mask(&["tenant_id"]),
        })
        .await
        .unwrap_err();
    assert_violation(&err, "update_mask");
    let s = c.get_tenant_settings(pb::GetTenantSettingsRequest {}).await.unwrap().into_inner();
    assert_eq!(s.time_zone, "UTC", "nothing was changed by the refused updates");
}
