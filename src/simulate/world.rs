//! The simulated organisation: hosts, their users, the agents on them, their tokens.

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

const FIRST_NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
    "peggy", "rupert", "sybil", "trent", "ursula", "victor", "wendy", "xavier", "yolanda", "zoe",
];

/// Agent products seen in the fleet, with the executable that runs them.
pub const AGENT_PRODUCTS: &[(&str, &str)] = &[("cowork", "cowork-agent"), ("desk-assistant", "desk-assistant")];
/// A build helper agent that is granted `curl` by the allowlist.
pub const BUILD_AGENT: (&str, &str) = ("ci-helper", "ci-helper");

#[derive(Debug, Clone)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub executable: String,
    pub token_id: String,
}

#[derive(Debug, Clone)]
pub struct Host {
    pub id: String,
    pub name: String,
    pub user: String,
    pub agents: Vec<Agent>,
}

pub fn hex(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
}

/// Builds `count` hosts, one user each; every host runs one or two agents.
pub fn build(rng: &mut ChaCha8Rng, count: usize) -> Vec<Host> {
    (0..count)
        .map(|index| {
            let first = FIRST_NAMES[index % FIRST_NAMES.len()];
            let user = if index < FIRST_NAMES.len() {
                first.to_string()
            } else {
                format!("{first}{}", index / FIRST_NAMES.len())
            };
            let id = format!("wks-{:04}", index + 1);
            let mut agents = Vec::new();
            let (name, executable) = *AGENT_PRODUCTS.choose(rng).expect("products listed");
            agents.push(agent(rng, name, executable));
            if index % 4 == 3 {
                agents.push(agent(rng, BUILD_AGENT.0, BUILD_AGENT.1));
            }
            Host {
                name: format!("{id}.corp.example.com"),
                id,
                user,
                agents,
            }
        })
        .collect()
}

fn agent(rng: &mut ChaCha8Rng, name: &str, executable: &str) -> Agent {
    Agent {
        id: format!("{name}-{}", hex(rng, 3)),
        name: name.to_string(),
        executable: executable.to_string(),
        token_id: format!("tok-{}", hex(rng, 4)),
    }
}
