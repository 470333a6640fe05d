//! Which services and instances have sent data, and when each was last seen.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::index::SeenInstance;
use crate::model::Resource;

/// One instance of a service as the service list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceInfo {
    /// `service.instance.id`, or the host name when the sender set no instance id.
    pub instance: String,
    pub host: String,
    /// The version this instance reported most recently.
    pub version: String,
    /// Latest record time from this instance (Unix ns).
    pub last_seen_unix_nano: i64,
}

/// A service and its instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceInfo {
    pub name: String,
    pub instances: Vec<InstanceInfo>,
    /// Latest record time over all instances (Unix ns).
    pub last_seen_unix_nano: i64,
}

/// Services seen so far; kept up to date at ingest and rebuilt from the index on start.
#[derive(Debug, Default)]
pub struct ServiceRegistry {
    services: BTreeMap<String, BTreeMap<String, InstanceInfo>>,
}

impl ServiceRegistry {
    /// Records that `resource` sent a record stamped `time`.
    pub fn observe(&mut self, resource: &Resource, time: i64) {
        let instance_key = if resource.service_instance_id.is_empty() {
            &resource.host_name
        } else {
            &resource.service_instance_id
        };
        self.observe_parts(
            &resource.service_name,
            instance_key,
            &resource.host_name,
            &resource.service_version,
            time,
        );
    }

    /// Records an instance read back from the index.
    pub fn observe_seen(&mut self, seen: &SeenInstance) {
        let key = if seen.instance.is_empty() {
            &seen.host
        } else {
            &seen.instance
        };
        self.observe_parts(
            &seen.service,
            key,
            &seen.host,
            &seen.version,
            seen.last_seen,
        );
    }

    fn observe_parts(
        &mut self,
        service: &str,
        instance: &str,
        host: &str,
        version: &str,
        time: i64,
    ) {
        let instances = match self.services.get_mut(service) {
            Some(i) => i,
            None => self.services.entry(service.to_string()).or_default(),
        };
        match instances.get_mut(instance) {
            Some(info) if info.last_seen_unix_nano >= time => {}
            Some(info) => {
                info.last_seen_unix_nano = time;
                if info.version != version {
                    info.version = version.to_string();
                }
            }
            None => {
                instances.insert(
                    instance.to_string(),
                    InstanceInfo {
                        instance: instance.to_string(),
                        host: host.to_string(),
                        version: version.to_string(),
                        last_seen_unix_nano: time,
                    },
                );
            }
        }
    }

    /// Every service, by name, with its instances.
    pub fn list(&self) -> Vec<ServiceInfo> {
        self.services
            .iter()
            .map(|(name, instances)| ServiceInfo {
                name: name.clone(),
                last_seen_unix_nano: instances
                    .values()
                    .map(|i| i.last_seen_unix_nano)
                    .max()
                    .unwrap_or(0),
                instances: instances.values().cloned().collect(),
            })
            .collect()
    }
}
