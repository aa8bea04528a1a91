//! What a service is to the process that runs it, written once: the
//! `banso` binary (`up`, `serve`, `migrate`), the test kit and the bench
//! all read the same [`ServiceDef`] of each service, so adding a service
//! is one line in the binary's list.

use std::sync::Arc;

use banso_kit::{
    config::Config,
    server::{Kit, ServiceSet},
    supervise::Supervisor,
};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::{Bus, partition::Partitions};

/// What a service gets to run: the process's bus, and the supervisor its
/// background tasks (relay, consumers, workers) run under.
#[derive(Clone)]
pub struct Runtime {
    pub bus: Arc<dyn Bus>,
    pub supervisor: Supervisor,
    /// The address this process serves gRPC on, set once it listens: how a
    /// service calls another served by the same process (`banso up`, the
    /// tests) when no URL for it is configured.
    pub local_grpc: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
}

impl Runtime {
    pub fn new(bus: Arc<dyn Bus>, supervisor: Supervisor) -> Self {
        Runtime { bus, supervisor, local_grpc: Default::default() }
    }

    /// Records the address the process's gRPC server listens on.
    pub fn serving_at(&self, addr: std::net::SocketAddr) {
        // Set once: a second server in one runtime would be a bug, not a move.
        let _ = self.local_grpc.set(addr);
    }

    /// The token that stops every task and the server.
    pub fn shutdown(&self) -> &CancellationToken {
        self.supervisor.shutdown()
    }
}

/// Everything a service is built from.
pub struct Context<'a> {
    pub config: &'a Config,
    pub kit: &'a Kit,
    pub runtime: &'a Runtime,
}

/// One service, as the process that runs it sees it.
pub struct ServiceDef {
    /// Its role in `banso serve <name>`, its PostgreSQL schema, the name of
    /// its SQLite file and of its events' source.
    pub name: &'static str,
    /// The event sources it consumes (`banso.<source>.>`); empty if none.
    pub consumes: &'static [&'static str],
    /// Connects to its database and applies its migrations.
    pub migrate: for<'a> fn(&'a Config) -> BoxFuture<'a, anyhow::Result<()>>,
    /// Connects, migrates, starts its background tasks under the runtime's
    /// supervisor, and adds its gRPC services to the set.
    pub build: for<'a> fn(&'a Context<'a>, ServiceSet) -> BoxFuture<'a, anyhow::Result<ServiceSet>>,
}

impl Context<'_> {
    /// The database of service `def` ([`banso_kit::db::open`]: migrated at
    /// start or checked), with its readiness watched: the database probe,
    /// and the bus while events wait to be published or `def` consumes, on
    /// behalf of the gRPC service `grpc`.
    pub async fn database<M: sea_orm_migration::MigratorTrait>(
        &self,
        def: &ServiceDef,
        grpc: &'static str,
    ) -> anyhow::Result<sea_orm::DatabaseConnection> {
        let db = banso_kit::db::open::<M>(self.config, def.name).await?;
        let sup = &self.runtime.supervisor;
        banso_kit::db::supervise_probe(sup, grpc, db.clone(), self.config.database.probe_interval);
        crate::bus::supervise_readiness(
            sup,
            grpc,
            self.runtime.bus.clone(),
            db.clone(),
            !def.consumes.is_empty(),
            self.config.server.bus_grace,
        );
        Ok(db)
    }
}

impl Context<'_> {
    /// The partitions of service `def` this replica holds
    /// ([`crate::partition`]): all of them on a bus of one partition; on a
    /// partitioned bus, a share kept by leases under the supervisor (task
    /// `<name>-partition-leases` of the gRPC service `grpc`), empty until
    /// the first leases are taken. Call once per service.
    pub fn partitions(&self, def: &ServiceDef, grpc: &'static str) -> Partitions {
        let bus = self.runtime.bus.clone();
        let count = bus.partitions();
        if count <= 1 {
            return Partitions::all(1);
        }
        let partitions = Partitions::none(count);
        let replica = crate::partition::replica_id();
        tracing::info!(service = def.name, replica, partitions = count, "sharing partitions with the other replicas");
        let (held, name) = (partitions.clone(), def.name);
        self.runtime.supervisor.spawn(grpc, format!("{name}-partition-leases"), move |shutdown| {
            let (bus, held, replica) = (bus.clone(), held.clone(), replica.clone());
            async move {
                let leases = bus.leases(name).await?;
                crate::partition::keep(leases, name, replica, held, shutdown).await
            }
        });
        partitions
    }
}

impl std::fmt::Debug for ServiceDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDef").field("name", &self.name).field("consumes", &self.consumes).finish()
    }
}
