//! The resource a record came from: which service, which instance, which host, which version.

use serde::{Deserialize, Serialize};

use super::Attributes;

/// Resource attributes with the four that every screen filters on lifted into fields.
///
/// Shared by `Arc` between all records of one OTLP resource block, so a batch of 1000 spans
/// from one process holds its resource once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// `service.name`; `unknown_service` when the sender did not set one (as the SDKs do).
    pub service_name: String,
    /// `service.instance.id`, or empty.
    pub service_instance_id: String,
    /// `host.name`, or empty.
    pub host_name: String,
    /// `service.version`, or empty.
    pub service_version: String,
    /// Every other resource attribute.
    pub attributes: Attributes,
}

/// A lifted resource attribute: its OpenTelemetry key and the column every span, log and
/// metric file keeps it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiftedKey {
    ServiceName,
    InstanceId,
    HostName,
    Version,
}

impl LiftedKey {
    /// Every lifted attribute, in the order pages list them.
    pub const ALL: [LiftedKey; 4] = [
        LiftedKey::ServiceName,
        LiftedKey::InstanceId,
        LiftedKey::Version,
        LiftedKey::HostName,
    ];

    /// Its OpenTelemetry key.
    pub fn key(self) -> &'static str {
        match self {
            LiftedKey::ServiceName => "service.name",
            LiftedKey::InstanceId => "service.instance.id",
            LiftedKey::HostName => "host.name",
            LiftedKey::Version => "service.version",
        }
    }

    /// The lifted attribute named `key` (`service.version` …), if it is one.
    pub fn of(key: &str) -> Option<LiftedKey> {
        Self::ALL.into_iter().find(|k| k.key() == key)
    }

    /// The column of the stored files that holds it.
    pub fn column(self) -> &'static str {
        match self {
            LiftedKey::ServiceName => "service_name",
            LiftedKey::InstanceId => "service_instance_id",
            LiftedKey::HostName => "host_name",
            LiftedKey::Version => "service_version",
        }
    }
}

impl Resource {
    /// The value of a lifted attribute.
    pub fn lifted(&self, key: LiftedKey) -> &str {
        match key {
            LiftedKey::ServiceName => &self.service_name,
            LiftedKey::InstanceId => &self.service_instance_id,
            LiftedKey::HostName => &self.host_name,
            LiftedKey::Version => &self.service_version,
        }
    }
}

/// Service name used when a resource has none, matching the OpenTelemetry SDK default.
pub const UNKNOWN_SERVICE: &str = "unknown_service";
