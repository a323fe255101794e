//! Data health per host: how each host's events stood against event time. Nothing the
//! engine sets aside goes unreported: a host whose events come late, too old or with a
//! clock ahead of its arrivals is named here, on `/metrics` and in the console.

use std::collections::HashMap;

use serde::Serialize;

use crate::clock::Timing;

/// One host's counts since it was first seen (or since it was last forgotten).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct HostHealth {
    pub host_id: String,
    /// Events evaluated although they arrived more than the lateness after their time
    /// (buffered on the host while it was offline, then uploaded).
    pub delayed: u64,
    /// Events not evaluated by at least one rule: behind their key's clock by more
    /// than the lateness.
    pub late: u64,
    /// Events older than the maximum event age on arrival: stored, never evaluated.
    pub too_old: u64,
    /// Events whose time was ahead of their arrival by more than the allowed skew.
    pub skewed: u64,
    /// Newest event time seen (ns).
    pub newest_time: i64,
    /// Newest arrival (ns).
    pub last_arrival: i64,
    /// The largest delay seen: arrival minus event time (ns).
    pub max_delay: i64,
}

impl HostHealth {
    pub fn troubled(&self) -> bool {
        self.late + self.too_old + self.skewed + self.delayed > 0
    }
}

/// The health of every host heard from within the maximum event age.
#[derive(Debug, Default)]
pub struct HealthBook {
    hosts: HashMap<String, HostHealth>,
}

/// Some events of one host, counted as `HostHealth` counts them; counts add and
/// times take the newest, so a burst's tally per host equals its events one by one.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    late: u64,
    too_old: u64,
    skewed: u64,
    delayed: u64,
    newest_time: i64,
    last_arrival: i64,
    max_delay: i64,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            late: 0,
            too_old: 0,
            skewed: 0,
            delayed: 0,
            newest_time: i64::MIN,
            last_arrival: i64::MIN,
            max_delay: i64::MIN,
        }
    }
}

impl Tally {
    pub fn add(&mut self, event_time: i64, arrival: i64, standing: Standing) {
        match standing.verdict {
            Timing::Late => self.late += 1,
            Timing::TooOld => self.too_old += 1,
            Timing::Skewed => self.skewed += 1,
            Timing::OnTime => {}
        }
        if standing.delayed {
            self.delayed += 1;
        }
        if standing.verdict == Timing::OnTime || standing.delayed {
            self.newest_time = self.newest_time.max(event_time);
        }
        self.last_arrival = self.last_arrival.max(arrival);
        self.max_delay = self.max_delay.max(arrival.saturating_sub(event_time));
    }
}

/// How one event stood, across every rule's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub verdict: Timing,
    /// Arrived more than the lateness after its time, and some rule evaluated it.
    pub delayed: bool,
}

impl HealthBook {
    /// One event: the path a burst's tallies must agree with.
    #[cfg(test)]
    pub fn observe(&mut self, host: &str, event_time: i64, arrival: i64, standing: Standing) {
        let mut tally = Tally::default();
        tally.add(event_time, arrival, standing);
        self.absorb(host, &tally);
    }

    /// Adds what one host's events of a burst came to (`Tally`): one lookup a host.
    pub fn absorb(&mut self, host: &str, tally: &Tally) {
        let health = match self.hosts.get_mut(host) {
            Some(health) => health,
            None => self.hosts.entry(host.to_string()).or_insert_with(|| HostHealth {
                host_id: host.to_string(),
                newest_time: i64::MIN,
                last_arrival: i64::MIN,
                ..HostHealth::default()
            }),
        };
        health.late += tally.late;
        health.too_old += tally.too_old;
        health.skewed += tally.skewed;
        health.delayed += tally.delayed;
        health.newest_time = health.newest_time.max(tally.newest_time);
        health.last_arrival = health.last_arrival.max(tally.last_arrival);
        health.max_delay = health.max_delay.max(tally.max_delay);
    }

    pub fn get(&self, host: &str) -> Option<&HostHealth> {
        self.hosts.get(host)
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Forgets hosts not heard from since `floor` (arrival time, ns).
    pub fn forget_before(&mut self, floor: i64) {
        self.hosts.retain(|_, health| health.last_arrival >= floor);
    }

    /// Hosts with anything to report, worst first (most events set aside or
    /// delayed), at most `limit`; then hosts silent since `silent_since`.
    pub fn report(&self, limit: usize, silent_since: i64) -> HealthReport {
        let mut troubled: Vec<&HostHealth> = self.hosts.values().filter(|health| health.troubled()).collect();
        troubled.sort_by(|a, b| {
            let weight = |h: &HostHealth| (h.late + h.too_old + h.skewed, h.delayed);
            weight(b).cmp(&weight(a)).then_with(|| a.host_id.cmp(&b.host_id))
        });
        let mut silent: Vec<&HostHealth> = self
            .hosts
            .values()
            .filter(|health| health.last_arrival < silent_since)
            .collect();
        silent.sort_by(|a, b| {
            a.last_arrival
                .cmp(&b.last_arrival)
                .then_with(|| a.host_id.cmp(&b.host_id))
        });
        let totals = self.hosts.values().fold(HealthTotals::default(), |mut totals, health| {
            totals.hosts += 1;
            totals.delayed += health.delayed;
            totals.late += health.late;
            totals.too_old += health.too_old;
            totals.skewed += health.skewed;
            totals
        });
        HealthReport {
            totals,
            silent_hosts: silent.len(),
            troubled: troubled.into_iter().take(limit).cloned().collect(),
            silent: silent.into_iter().take(limit).cloned().collect(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct HealthTotals {
    pub hosts: u64,
    pub delayed: u64,
    pub late: u64,
    pub too_old: u64,
    pub skewed: u64,
}

/// What the API, the console and `/metrics` show.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealthReport {
    pub totals: HealthTotals,
    pub silent_hosts: usize,
    /// Hosts whose events came delayed, late, too old or skewed, worst first.
    pub troubled: Vec<HostHealth>,
    /// Hosts not heard from lately, longest silent first.
    pub silent: Vec<HostHealth>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(verdict: Timing, delayed: bool) -> Standing {
        Standing { verdict, delayed }
    }

    /// A host's events of a burst tallied, then absorbed once, leave what observing
    /// them one by one leaves, on a host already known and on a new one.
    #[test]
    fn a_tally_absorbed_counts_as_its_events_one_by_one() {
        let events = [
            (100, 100, standing(Timing::OnTime, false)),
            (0, 3_600, standing(Timing::OnTime, true)),
            (9_000, 10, standing(Timing::Skewed, false)),
            (50, 400, standing(Timing::Late, false)),
            (1, 900, standing(Timing::TooOld, false)),
            (30, 500, standing(Timing::Late, true)),
        ];
        let mut one_by_one = HealthBook::default();
        let mut tallied = HealthBook::default();
        for book in [&mut one_by_one, &mut tallied] {
            book.observe("known", 5_000, 9_000, standing(Timing::Late, true));
        }
        for host in ["known", "new"] {
            let mut tally = Tally::default();
            for (time, arrival, stood) in events {
                one_by_one.observe(host, time, arrival, stood);
                tally.add(time, arrival, stood);
            }
            tallied.absorb(host, &tally);
            assert_eq!(tallied.get(host), one_by_one.get(host), "{host}");
        }
    }

    #[test]
    fn counts_per_host_and_ranks_the_worst_first() {
        let mut book = HealthBook::default();
        book.observe("quiet", 10, 10, standing(Timing::OnTime, false));
        book.observe("laptop", 0, 3_600, standing(Timing::OnTime, true));
        book.observe("skewed", 9_000, 10, standing(Timing::Skewed, false));
        book.observe("skewed", 1, 10, standing(Timing::Late, false));
        book.observe("skewed", 0, 10, standing(Timing::TooOld, false));
        let report = book.report(10, 5);
        let names: Vec<&str> = report.troubled.iter().map(|h| h.host_id.as_str()).collect();
        assert_eq!(names, vec!["skewed", "laptop"], "quiet has nothing to report");
        assert_eq!(
            (
                report.totals.late,
                report.totals.too_old,
                report.totals.skewed,
                report.totals.delayed
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(report.troubled[1].max_delay, 3_600);
        assert_eq!(report.silent_hosts, 0);
        let later = book.report(10, 100);
        assert_eq!(later.silent_hosts, 2, "quiet and skewed last arrived at 10");
        book.forget_before(100);
        assert_eq!(book.len(), 1);
    }
}
