//! Whether an alert's evidence is good enough for a response step to run without a
//! person (the step's `trust`), and if not, why, in words an analyst reads on the
//! held action: "2 of 5 evidence events unauthenticated".

use cordon_schemas::TrustLevel;
use cordon_schemas::alert::Alert;

use crate::enrich::{EvidenceProvenance, TargetEnricher};

/// Why a step asking `level` may not act on `alert` alone; `None` when it may. The
/// evidence's provenance is read through `enricher` once per alert (`read` keeps it).
pub fn step_shortfall(
    level: TrustLevel,
    alert: &Alert,
    enricher: Option<&dyn TargetEnricher>,
    read: &mut Option<Option<Vec<EvidenceProvenance>>>,
) -> Option<String> {
    if level == TrustLevel::Any {
        return None;
    }
    let found = read.get_or_insert_with(|| enricher.and_then(|enricher| enricher.evidence_provenance(&alert.evidence)));
    let ids: Vec<String> = alert.evidence.iter().map(|event| event.event_id.clone()).collect();
    shortfall(level, &ids, found.as_deref())
}

/// Why the evidence falls short of `level`; `None` when it does not.
///
/// `evidence_ids` are the events the alert rests on; `found` is their stored
/// provenance (`None`: could not be read). An event not found counts as falling short:
/// what cannot be checked cannot be trusted.
pub fn shortfall(level: TrustLevel, evidence_ids: &[String], found: Option<&[EvidenceProvenance]>) -> Option<String> {
    if level == TrustLevel::Any {
        return None;
    }
    let asked = format!("the playbook step asks trust = \"{}\"", level.as_str());
    let Some(found) = found else {
        return Some(format!("the evidence's provenance could not be read ({asked})"));
    };
    if evidence_ids.is_empty() {
        return Some(format!("the alert names no evidence events ({asked})"));
    }
    let total = evidence_ids.len();
    let lookup = |id: &String| found.iter().find(|event| &event.event_id == id);
    let missing = evidence_ids.iter().filter(|id| lookup(id).is_none()).count();
    let unauthenticated = evidence_ids
        .iter()
        .filter_map(lookup)
        .filter(|event| event.producer.is_none())
        .count();
    let unsigned = evidence_ids
        .iter()
        .filter_map(lookup)
        .filter(|event| event.signature_status != "valid")
        .count();
    let mut reasons = Vec::new();
    if unauthenticated > 0 {
        reasons.push(format!("{unauthenticated} of {total} evidence events unauthenticated"));
    }
    if level == TrustLevel::Signed && unsigned > 0 {
        reasons.push(format!("{unsigned} of {total} evidence events unsigned"));
    }
    if missing > 0 {
        reasons.push(format!("{missing} of {total} evidence events not found in storage"));
    }
    (!reasons.is_empty()).then(|| format!("{} ({asked})", reasons.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, producer: Option<&str>, signature: &str) -> EvidenceProvenance {
        EvidenceProvenance {
            event_id: id.into(),
            producer: producer.map(Into::into),
            signature_status: signature.into(),
        }
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|index| format!("e{index}")).collect()
    }

    #[test]
    fn the_weakest_evidence_event_decides_and_the_reason_counts_them() {
        let found = vec![
            event("e0", Some("wks-1"), "valid"),
            event("e1", None, "missing"),
            event("e2", Some("wks-1"), "missing"),
            event("e3", None, "valid"),
            event("e4", Some("wks-1"), "valid"),
        ];
        assert_eq!(shortfall(TrustLevel::Any, &ids(5), None), None);
        assert_eq!(
            shortfall(TrustLevel::Authenticated, &ids(5), Some(&found)).unwrap(),
            "2 of 5 evidence events unauthenticated (the playbook step asks trust = \"authenticated\")"
        );
        assert_eq!(
            shortfall(TrustLevel::Signed, &ids(5), Some(&found)).unwrap(),
            "2 of 5 evidence events unauthenticated, 2 of 5 evidence events unsigned (the playbook step asks trust = \"signed\")"
        );
        let trusted: Vec<_> = (0..3)
            .map(|n| event(&format!("e{n}"), Some("wks-1"), "valid"))
            .collect();
        assert_eq!(shortfall(TrustLevel::Signed, &ids(3), Some(&trusted)), None);
        assert_eq!(shortfall(TrustLevel::Authenticated, &ids(3), Some(&trusted)), None);
    }

    #[test]
    fn what_cannot_be_read_or_found_falls_short() {
        assert!(
            shortfall(TrustLevel::Authenticated, &ids(2), None)
                .unwrap()
                .contains("could not be read")
        );
        let one = vec![event("e0", Some("wks-1"), "valid")];
        assert!(
            shortfall(TrustLevel::Authenticated, &ids(2), Some(&one))
                .unwrap()
                .starts_with("1 of 2 evidence events not found")
        );
        assert!(shortfall(TrustLevel::Authenticated, &[], Some(&one)).is_some());
    }
}
