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

/// Service name used when a resource has none, matching the OpenTelemetry SDK default.
pub const UNKNOWN_SERVICE: &str = "unknown_service";
