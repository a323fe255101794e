//! A real Kafka-protocol broker for the tests: tansu 0.6 with its SQLite storage engine
//! (`scripts/setup-test-env.sh` installs it), on a loopback port, in a scratch dir.
//!
//! Why tansu on SQLite: it is the broker that passes `kafka_tool.py resume-check`
//! (a group offset committed in the middle of a record batch resumes there); tansu's
//! memory engine does not (see the README's Kafka section).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::python;
use crate::crash::free_port;

pub struct Broker {
    child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        // A failed test unwinds before its runtime drops the server's consumer, which
        // then says goodbye to the broker: leave it up for that; it dies with the
        // test's thread (PR_SET_PDEATHSIG below).
        if std::thread::panicking() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tansu binary: `CORDON_TANSU`, else where the setup script installs it, else PATH.
pub fn tansu() -> PathBuf {
    if let Some(path) = std::env::var_os("CORDON_TANSU") {
        return PathBuf::from(path);
    }
    let installed = crate::common::cache_dir().join("tansu/bin/tansu");
    assert!(
        installed.exists(),
        "no tansu broker at {}: run scripts/setup-test-env.sh (or scripts/test.sh) first",
        installed.display()
    );
    installed
}

impl Broker {
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let mut child = Command::new(tansu())
            .current_dir(dir.path())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            // tansu resolves the SQLite path against its working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::null())
            .pre_exec_death_signal()
            .stderr(std::fs::File::create(dir.path().join("tansu.log")).unwrap())
            .spawn()
            .expect("tansu starts");
        let started = Instant::now();
        while TcpStream::connect(&address).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("tansu.log")).unwrap_or_default();
                panic!("tansu exited with {status}: {log}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "tansu did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Broker {
            child,
            address,
            _dir: dir,
        }
    }

    /// librdkafka's mock cluster (examples/kafka_mock_broker.rs) with `topics`, for the
    /// takeover test: tansu 0.6 never hands a dead member's partitions to the survivors.
    pub fn mock(topics: &[(&str, u32)]) -> Broker {
        let exe = std::env::current_exe().unwrap();
        let binary = exe
            .parent()
            .and_then(Path::parent)
            .map(|dir| dir.join("examples/kafka_mock_broker"))
            .filter(|path| path.exists())
            .expect("examples/kafka_mock_broker is built by cargo test");
        let mut child = Command::new(binary)
            .args(topics.iter().map(|(name, partitions)| format!("{name}:{partitions}")))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .pre_exec_death_signal()
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        Broker {
            child,
            address: line.trim().to_string(),
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Creates topics (`name`, partitions) with tansu's own CLI.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let output = Command::new(tansu())
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
                "--broker",
            ])
            .arg(format!("tcp://{}", self.address))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "tansu topic create {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Runs `kafka_tool.py` against this broker; its standard output.
    pub fn tool(&self, args: &[&str]) -> String {
        let mut command = Command::new(python());
        command
            .arg(crate::common::python_script("kafka_tool.py"))
            .arg(args[0])
            .args(["--brokers", &self.address])
            .args(&args[1..]);
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "kafka_tool.py {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Produces `events` to `topic` in `format` with kafka_tool.py (`extra`: its other
    /// `produce` options, such as `--raw TEXT` or `--one-per-batch`).
    pub fn produce(&self, topic: &str, format: &str, events: &[cordon_schemas::FlatEvent], extra: &[&str]) {
        let file = crate::common::write_jsonl(events);
        let mut args = vec!["produce", "--topic", topic, "--format", format, "--events"];
        args.push(file.path().to_str().unwrap());
        args.extend_from_slice(extra);
        self.tool(&args);
    }

    /// Every message of a topic (up to `count`), as kafka_tool.py prints them.
    pub fn consume(&self, topic: &str, count: usize, timeout: Duration) -> Vec<serde_json::Value> {
        self.tool(&[
            "consume",
            "--topic",
            topic,
            "--count",
            &count.to_string(),
            "--timeout",
            &timeout.as_secs().to_string(),
        ])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
    }
}

/// Kills a child when the thread that started it ends, however it ends.
trait DeathSignal {
    fn pre_exec_death_signal(&mut self) -> &mut Self;
}

impl DeathSignal for Command {
    fn pre_exec_death_signal(&mut self) -> &mut Self {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            self.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        }
    }
}
