//! `cordon simulate`: a deterministic generator of agent telemetry. The same seed, start,
//! rate and duration give the same events, byte for byte.

pub mod agents;
pub mod background;
pub mod catalog;
pub mod events;
pub mod runner;
pub mod scenarios;
pub mod senders;
#[cfg(test)]
mod sigma_equivalence;
pub mod world;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use cordon_schemas::FlatEvent;
use cordon_schemas::fields::attr;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

pub use scenarios::Scenario;
use world::{Host, hex};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub hosts: usize,
    /// Background events per second of simulated time.
    pub rate: f64,
    /// Simulated time the background covers (extended to cover the attacks).
    pub duration: Duration,
    /// Event time of the first event.
    pub start_unix_nano: i64,
    pub scenarios: Vec<Scenario>,
    /// When, after the start, the first attack begins; later ones follow `attack_spacing` apart.
    pub attack_at: Duration,
    pub attack_spacing: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            hosts: 20,
            rate: 200.0,
            duration: Duration::from_secs(60),
            start_unix_nano: 0,
            scenarios: Vec::new(),
            attack_at: Duration::from_secs(5),
            attack_spacing: Duration::from_secs(3),
        }
    }
}

/// An attack the simulator injected: what should be detected, and where.
#[derive(Debug, Clone, Serialize)]
pub struct Injection {
    pub scenario: Scenario,
    pub rule_id: &'static str,
    pub host_id: String,
    pub user_name: String,
    pub agent_id: String,
    pub token_id: String,
    pub start_unix_nano: i64,
    pub events: usize,
}

struct Pending {
    time: i64,
    order: u64,
    event: FlatEvent,
    skip_sequence: i64,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.order) == (other.time, other.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time, self.order).cmp(&(other.time, other.order))
    }
}

pub struct Simulator {
    rng: ChaCha8Rng,
    hosts: Vec<Host>,
    host_index: HashMap<String, usize>,
    pacing: Vec<background::Pacing>,
    sequences: Vec<i64>,
    config: SimConfig,
    step_ns: f64,
    background_total: u64,
    background_next: u64,
    attacks: BinaryHeap<Reverse<Pending>>,
    order: u64,
    injections: Vec<Injection>,
    /// Per host, when an attack whose playbook isolates it automatically ends: from
    /// then its background makes no flows, as an isolated host makes none.
    isolated_from: Vec<Option<i64>>,
}

impl Simulator {
    pub fn new(config: SimConfig) -> Simulator {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let hosts = world::build(&mut rng, config.hosts.max(1));
        let rate = config.rate.max(0.001);
        let mut simulator = Simulator {
            host_index: hosts
                .iter()
                .enumerate()
                .map(|(index, host)| (host.id.clone(), index))
                .collect(),
            pacing: vec![background::Pacing::default(); hosts.len()],
            sequences: vec![0; hosts.len()],
            step_ns: 1e9 / rate,
            background_total: (rate * config.duration.as_secs_f64()).round() as u64,
            background_next: 0,
            attacks: BinaryHeap::new(),
            order: 0,
            injections: Vec::new(),
            isolated_from: vec![None; hosts.len()],
            rng,
            hosts,
            config,
        };
        simulator.plan_attacks();
        // Attacks hide in background activity: it runs at least until the last one ends.
        let last_attack = simulator.attacks.iter().map(|pending| pending.0.time).max();
        if let Some(last) = last_attack {
            let needed = ((last - simulator.config.start_unix_nano) as f64 / simulator.step_ns).ceil() as u64 + 1;
            simulator.background_total = simulator.background_total.max(needed);
        }
        simulator
    }

    fn plan_attacks(&mut self) {
        let scenarios = self.config.scenarios.clone();
        for (position, scenario) in scenarios.into_iter().enumerate() {
            // Each attack on its own host, spread over the fleet.
            let host_position = (position * 7 + 3) % self.hosts.len();
            let host = self.hosts[host_position].clone();
            let agent = host.agents[0].clone();
            let start = self.config.start_unix_nano
                + (self.config.attack_at + self.config.attack_spacing * position as u32).as_nanos() as i64;
            let planned = scenarios::events(scenario, &mut self.rng, start, &host, &agent);
            if scenario.isolates_host()
                && let Some(end) = planned.iter().map(|attack| attack.event.time_unix_nano).max()
            {
                let isolated = &mut self.isolated_from[host_position];
                *isolated = Some(isolated.map_or(end, |earlier| earlier.min(end)));
            }
            self.injections.push(Injection {
                scenario,
                rule_id: scenario.rule_id(),
                host_id: host.id.clone(),
                user_name: host.user.clone(),
                agent_id: agent.id.clone(),
                token_id: agent.token_id.clone(),
                start_unix_nano: start,
                events: planned.len(),
            });
            for attack in planned {
                self.order += 1;
                self.attacks.push(Reverse(Pending {
                    time: attack.event.time_unix_nano,
                    order: self.order,
                    event: attack.event,
                    skip_sequence: attack.skip_sequence,
                }));
            }
        }
    }

    /// The attacks planned, for the operator and for tests.
    pub fn injections(&self) -> &[Injection] {
        &self.injections
    }

    /// Event time of the background event `index`.
    fn background_time(&self, index: u64) -> i64 {
        self.config.start_unix_nano + (index as f64 * self.step_ns) as i64
    }

    /// Whether every event has been produced.
    pub fn is_done(&self) -> bool {
        self.background_next >= self.background_total && self.attacks.is_empty()
    }

    /// Every event with an event time up to `until`, in time order, with `event.id` and
    /// `event.sequence` set.
    pub fn events_until(&mut self, until: i64) -> Vec<FlatEvent> {
        self.next_events(until, usize::MAX)
    }

    /// Like `events_until`, but stops after about `max` events (a step may add two).
    pub fn next_events(&mut self, until: i64, max: usize) -> Vec<FlatEvent> {
        let mut out = Vec::new();
        while out.len() < max {
            let next_background = (self.background_next < self.background_total)
                .then(|| self.background_time(self.background_next))
                .filter(|time| *time <= until);
            let next_attack = self
                .attacks
                .peek()
                .map(|pending| pending.0.time)
                .filter(|time| *time <= until);
            match (next_background, next_attack) {
                (None, None) => break,
                (Some(background), attack) if attack.is_none_or(|attack| background <= attack) => {
                    let host_position = self.background_next as usize % self.hosts.len();
                    self.background_next += 1;
                    let host = self.hosts[host_position].clone();
                    let mut events =
                        background::step(&mut self.rng, background, &host, &mut self.pacing[host_position]);
                    if self.isolated_from[host_position].is_some_and(|from| background >= from) {
                        events.retain(|event| event.text(attr::EVENT_NAME) != Some("network.flow"));
                    }
                    for event in events {
                        out.push(self.stamp(event, 0));
                    }
                }
                _ => {
                    let Reverse(pending) = self.attacks.pop().expect("peeked");
                    out.push(self.stamp(pending.event, pending.skip_sequence));
                }
            }
        }
        out
    }

    fn stamp(&mut self, mut event: FlatEvent, skip_sequence: i64) -> FlatEvent {
        // Agents' own telemetry is another producer on the host: it does not count in
        // the host's sequence (Claude Code keeps one per session, Codex none).
        if matches!(
            event.text(attr::SERVICE_NAME),
            Some(agents::CLAUDE_CODE | agents::CODEX)
        ) {
            event.set(attr::EVENT_ID, hex(&mut self.rng, 16));
            return event;
        }
        let host = event
            .text(attr::HOST_ID)
            .and_then(|id| self.host_index.get(id))
            .copied()
            .unwrap_or(0);
        self.sequences[host] += 1 + skip_sequence;
        event
            .set(attr::EVENT_ID, hex(&mut self.rng, 16))
            .set_int(attr::EVENT_SEQUENCE, self.sequences[host]);
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(scenarios: Vec<Scenario>) -> SimConfig {
        SimConfig {
            rate: 50.0,
            duration: Duration::from_secs(30),
            start_unix_nano: 1_768_471_445_000_000_000,
            scenarios,
            ..SimConfig::default()
        }
    }

    fn all(config: SimConfig) -> Vec<FlatEvent> {
        let mut simulator = Simulator::new(config);
        simulator.events_until(i64::MAX)
    }

    #[test]
    fn the_same_seed_gives_the_same_events() {
        let first = all(config(Scenario::ALL.to_vec()));
        let second = all(config(Scenario::ALL.to_vec()));
        assert_eq!(first, second);
        let other = all(SimConfig {
            seed: 7,
            ..config(Scenario::ALL.to_vec())
        });
        assert_ne!(first, other);
    }

    /// Whether the host's sequence counts the event (agents' own telemetry does not).
    fn counted_by_host(event: &FlatEvent) -> bool {
        !matches!(
            event.text(attr::SERVICE_NAME),
            Some(agents::CLAUDE_CODE | agents::CODEX)
        )
    }

    #[test]
    fn events_come_in_time_order_with_per_host_sequences() {
        let events = all(config(vec![Scenario::ExfilAttemptChain]));
        assert!(events.len() > 1500, "{}", events.len());
        assert!(
            events
                .windows(2)
                .all(|pair| pair[0].time_unix_nano <= pair[1].time_unix_nano)
        );
        let mut last: HashMap<String, i64> = HashMap::new();
        for event in events.iter().filter(|event| counted_by_host(event)) {
            let host = event.text(attr::HOST_ID).unwrap().to_string();
            let Some(cordon_schemas::AttrValue::Int(sequence)) = event.get(attr::EVENT_SEQUENCE) else {
                panic!()
            };
            let previous = last.insert(host, *sequence).unwrap_or(0);
            assert_eq!(*sequence, previous + 1, "no gap without the gap scenario");
        }
    }

    #[test]
    fn the_gap_scenario_skips_sequence_numbers_on_its_host() {
        let mut simulator = Simulator::new(config(vec![Scenario::TelemetryGap]));
        let host = simulator.injections()[0].host_id.clone();
        let events = simulator.events_until(i64::MAX);
        let sequences: Vec<i64> = events
            .iter()
            .filter(|event| event.text(attr::HOST_ID) == Some(host.as_str()) && counted_by_host(event))
            .map(|event| match event.get(attr::EVENT_SEQUENCE) {
                Some(cordon_schemas::AttrValue::Int(sequence)) => *sequence,
                _ => panic!(),
            })
            .collect();
        let gaps = sequences.windows(2).filter(|pair| pair[1] != pair[0] + 1).count();
        assert_eq!(gaps, 1);
    }

    #[test]
    fn every_event_is_valid_under_the_contract() {
        for event in all(config(Scenario::ALL.to_vec())) {
            let json = event.to_json(false);
            let record = cordon_schemas::flat::flat_json_to_event(&json).unwrap();
            assert!(record.validate().is_ok(), "{json}");
            assert!(record.notices().is_empty(), "{json}");
        }
    }
}
