//! librdkafka's mock Kafka cluster as a process of its own, for the consumer-group
//! takeover test: tansu 0.6 does not hand a dead member's partitions to the others.
//!
//! usage: kafka_mock_broker TOPIC:PARTITIONS...
//! Prints the bootstrap servers on the first line, then serves until killed.

use std::io::Write;

use rdkafka::mocking::MockCluster;

fn main() {
    let cluster = MockCluster::new(1).expect("the mock cluster starts");
    for spec in std::env::args().skip(1) {
        let (topic, partitions) = spec.split_once(':').unwrap_or((spec.as_str(), "1"));
        let partitions: i32 = partitions.parse().expect("TOPIC:PARTITIONS");
        cluster
            .create_topic(topic, partitions, 1)
            .expect("the topic is created");
    }
    println!("{}", cluster.bootstrap_servers());
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::park();
    }
}
