//! The handler prologue, once: every RPC states its access rule and its
//! call, and [`handle`] does the rest (who is calling, may they, the reply
//! or the error through the one table).
//!
//! ```ignore
//! async fn get_account(&self, req: Request<pb::GetAccountRequest>) -> Rpc<pb::Account> {
//!     handle(req, Access::Read, async |caller, r| {
//!         let id = wire::uuid("id", &r.id)?;
//!         Ok(self.app.get_account(&caller, id).await?.into())
//!     })
//!     .await
//! }
//! ```

use crate::{
    auth::{self, Access, Caller},
    error::Result,
};

/// What a tonic handler returns.
pub type Rpc<T> = std::result::Result<tonic::Response<T>, tonic::Status>;

/// Authenticates the caller (the [`auth::AuthLayer`] put it in the request),
/// requires `access` (PERMISSION_DENIED otherwise), runs `call` with the
/// caller and the message (or stream), and converts its error through the
/// error table.
pub async fn handle<T, R>(
    req: tonic::Request<T>,
    access: Access,
    call: impl AsyncFnOnce(Caller, T) -> Result<R>,
) -> Rpc<R> {
    let caller = auth::caller(&req)?;
    caller.require(access)?;
    tracing::Span::current().record("tenant_id", caller.tenant_id.as_str());
    Ok(tonic::Response::new(call(caller, req.into_inner()).await?))
}
