//! The `cordon.spoofing` finding: a producer's credential sent events for a host it
//! does not cover. Those events are rejected (`host_not_permitted`); one finding per
//! request and claimed host is stored instead, on the claimed host, with the request's
//! provenance (so `producer` names the credential), for the `telemetry-spoofing` rule.

use std::collections::BTreeMap;

use crate::kind::EventKind;
use crate::record::EventRecord;
use crate::value::AttrValue;

/// Attribute: how many records of the request named the host.
pub const RECORDS_ATTRIBUTE: &str = "spoofing.records";
/// Attribute: the kinds those records claimed, comma-separated, sorted.
pub const EVENT_NAMES_ATTRIBUTE: &str = "spoofing.event_names";
/// At most this many findings per request: a request naming thousands of hosts is one
/// producer lying, and its first hosts say so.
pub const MAX_FINDINGS_PER_REQUEST: usize = 64;

/// The rejected records of one request, by the host they claimed.
#[derive(Debug, Default)]
pub struct SpoofedHosts {
    hosts: BTreeMap<String, (usize, std::collections::BTreeSet<String>)>,
}

impl SpoofedHosts {
    pub fn add(&mut self, host: &str, event_name: &str) {
        if !self.hosts.contains_key(host) && self.hosts.len() >= MAX_FINDINGS_PER_REQUEST {
            return;
        }
        let (records, names) = self.hosts.entry(host.to_string()).or_default();
        *records += 1;
        if names.len() < 16 {
            names.insert(event_name.to_string());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// One finding record per claimed host, timed at `received_unix_nano`.
    pub fn findings(&self, received_unix_nano: i64) -> Vec<EventRecord<'static>> {
        self.hosts
            .iter()
            .map(|(host, (records, names))| {
                let mut record = EventRecord::new();
                record.time_unix_nano = received_unix_nano.max(0) as u64;
                record.set(crate::fields::attr::HOST_ID.into(), AttrValue::Str(host.clone().into()));
                record.set(
                    crate::fields::attr::EVENT_NAME.into(),
                    AttrValue::Str(EventKind::CordonSpoofing.as_str().into()),
                );
                record.set(RECORDS_ATTRIBUTE.into(), AttrValue::Int(*records as i64));
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                record.set(EVENT_NAMES_ATTRIBUTE.into(), AttrValue::Str(names.join(",").into()));
                record
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_finding_per_claimed_host_with_counts_and_kinds() {
        let mut spoofed = SpoofedHosts::default();
        spoofed.add("ceo-laptop", "network.flow");
        spoofed.add("ceo-laptop", "file.access");
        spoofed.add("ceo-laptop", "network.flow");
        spoofed.add("cfo-laptop", "process.start");
        let findings = spoofed.findings(1_000);
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].host_id.as_deref(), Some("ceo-laptop"));
        assert_eq!(findings[0].event_name.as_deref(), Some("cordon.spoofing"));
        let extra = |record: &EventRecord<'_>, name: &str| {
            record
                .extra
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.to_text().into_owned())
        };
        assert_eq!(extra(&findings[0], RECORDS_ATTRIBUTE).as_deref(), Some("3"));
        assert_eq!(
            extra(&findings[0], EVENT_NAMES_ATTRIBUTE).as_deref(),
            Some("file.access,network.flow")
        );
        for n in 0..1_000 {
            spoofed.add(&format!("host-{n}"), "network.flow");
        }
        assert_eq!(spoofed.findings(1).len(), MAX_FINDINGS_PER_REQUEST);
    }
}
