//! OTLP resource and scope → [`Resource`] with the well-known keys lifted out.

use std::sync::Arc;

#[cfg(test)]
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
#[cfg(test)]
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;

use crate::model::{take_string, Attributes, LiftedKey, Resource, UNKNOWN_SERVICE};

/// Converts an OTLP resource; a missing `service.name` becomes `unknown_service`. (The
/// receivers read resources in place; the row oracles of their tests decode them by prost.)
#[cfg(test)]
pub fn convert_resource(resource: Option<OtlpResource>) -> Arc<Resource> {
    resource_of(crate::model::from_key_values(
        resource.map(|r| r.attributes).unwrap_or_default(),
    ))
}

/// A resource from its attribute object, the well-known keys lifted out of it.
pub fn resource_of(mut attributes: Attributes) -> Arc<Resource> {
    let mut take = |key: LiftedKey| take_string(&mut attributes, key.key());
    let service_name = take(LiftedKey::ServiceName)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| UNKNOWN_SERVICE.to_string());
    let service_instance_id = take(LiftedKey::InstanceId).unwrap_or_default();
    let host_name = take(LiftedKey::HostName).unwrap_or_default();
    let service_version = take(LiftedKey::Version).unwrap_or_default();
    Arc::new(Resource {
        service_name,
        service_instance_id,
        host_name,
        service_version,
        attributes,
    })
}

/// Name and version of an instrumentation scope, empty when absent.
#[cfg(test)]
pub fn scope_name_version(scope: Option<InstrumentationScope>) -> (String, String) {
    scope.map(|s| (s.name, s.version)).unwrap_or_default()
}
