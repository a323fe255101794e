//! A full disk is back-pressure, not loss: while the data directory's filesystem is
//! full, exports are refused (UNAVAILABLE, retry later); once space is back, what is
//! acknowledged survives a `kill -9`, however the failed writes left the WAL.
//!
//! The filesystem is a real one that really fills: a small tmpfs mounted for the test
//! (so the test runs as root, as CI does here).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use cordon::simulate::senders::{SendReport, Sender};
use cordon_schemas::otlp::events_to_request;
use prost::Message;

use crate::common::*;
use crate::crash::{ids, serve, stored_ids};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount(8) runs");
        assert!(
            status.success(),
            "this test fills a real filesystem: it mounts a small tmpfs, which needs root (as CI runs)"
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the filesystem refuses: the disk is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0x5a_u8; 64 << 10];
    loop {
        if file.write_all(&block).and_then(|()| file.sync_data()).is_err() {
            break;
        }
    }
    // The last bytes too: small writes until nothing fits.
    while file.write_all(&[0x5a; 512]).and_then(|()| file.sync_data()).is_ok() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_exports_and_loses_nothing_acknowledged_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mount = Tmpfs::mount(&dir.path().join("fs"), "48m");
    let data_dir = mount.0.join("data");
    let events = simulated(61, 14_000, &[]);
    let (before, rest) = events.split_at(2_000);
    let (during, after) = rest.split_at(2_000);

    let mut served = serve(&data_dir, "1h");
    let url = format!("http://{}", served.grpc);
    let mut sender = Sender::grpc(&url).await.unwrap();
    let mut report = SendReport::default();
    for chunk in before.chunks(200) {
        sender.send(chunk, &mut report).await.unwrap();
    }

    fill(&mount.0.join("filler"));
    let mut refused = 0;
    for chunk in during.chunks(200) {
        let body = bytes::Bytes::from(events_to_request(chunk).encode_to_vec());
        match grpc_raw(&url, body).await {
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                refused += 1;
            }
            Ok(response) => assert!(response.partial_success.is_none(), "{response:?}"),
        }
    }
    assert!(refused > 0, "no export was refused on a full disk");

    std::fs::remove_file(mount.0.join("filler")).unwrap();
    let mut report = SendReport::default();
    for chunk in after.chunks(200) {
        sender.send(chunk, &mut report).await.unwrap();
    }
    assert_eq!(report.rejected, 0, "{report:?}");
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    drop(served);

    let stored: std::collections::BTreeSet<String> = stored_ids(&data_dir).into_iter().collect();
    let acknowledged: std::collections::BTreeSet<String> = ids(before).union(&ids(after)).cloned().collect();
    let lost = acknowledged.difference(&stored).count();
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged events lost after the disk-full episode",
        acknowledged.len()
    );
    // And the server starts again on what the episode left.
    let served = serve(&data_dir, "1h");
    drop(served);
}

/// The same request sent twice at once (a producer's retry while its first try is on
/// its way), on a full disk where every first try fails: before, a retry that came
/// while the first was on its way was answered "duplicates, OK" and its events were
/// lost. Now a redelivery waits for its original's outcome and is answered with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_racing_its_original_is_acknowledged_only_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mount = Tmpfs::mount(&dir.path().join("fs"), "48m");
    let data_dir = mount.0.join("data");
    let events = simulated(62, 8_000, &[]);
    let mut served = serve(&data_dir, "1h");
    let url = format!("http://{}", served.grpc);
    fill(&mount.0.join("filler"));

    let mut acknowledged = std::collections::BTreeSet::new();
    let (mut answered, mut refused) = (0, 0);
    for chunk in events.chunks(100) {
        let body = bytes::Bytes::from(events_to_request(chunk).encode_to_vec());
        let (first, retry) = tokio::join!(grpc_raw(&url, body.clone()), grpc_raw(&url, body));
        for result in [first, retry] {
            match result {
                Ok(response) => {
                    assert!(response.partial_success.is_none(), "{response:?}");
                    answered += 1;
                    acknowledged.extend(ids(chunk));
                }
                Err(status) => {
                    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                    refused += 1;
                }
            }
        }
    }
    eprintln!("{answered} tries acknowledged, {refused} refused on the full disk");
    assert!(refused > 0, "the disk was not full");
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    drop(served);
    std::fs::remove_file(mount.0.join("filler")).unwrap();

    let stored: std::collections::BTreeSet<String> = stored_ids(&data_dir).into_iter().collect();
    let lost = acknowledged.difference(&stored).count();
    assert_eq!(lost, 0, "{lost} of {} acknowledged events lost", acknowledged.len());
}
