//! Regenerates the seed corpus of the `open_envelope` fuzz target:
//! `cargo run -p vigil-wire --example make_fuzz_seeds -- fuzz/corpus/open_envelope`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use vigil_model::{AgentId, AgentInfo, Alert, Category, Item};
use vigil_wire::fuzzing::FUZZ_KEY;
use vigil_wire::{MessageKind, SealParams, SealingKey, seal, seal_batch};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: make_fuzz_seeds DIR");
    std::fs::create_dir_all(&dir).unwrap();
    let key = SealingKey::from_bytes(FUZZ_KEY);
    let params = SealParams {
        agent_id: AgentId::new("fuzz-agent").unwrap(),
        boot_epoch: 1,
        seq: 1,
        timestamp_ms: 1_700_000_000_000,
        kind: MessageKind::Batch,
    };
    let ts = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let mut alert = Alert::new(Category::PortScan, ts, "seed");
    alert.id = uuid::Uuid::from_u128(1);
    let items = vec![Item::Alert(alert), Item::Heartbeat(AgentInfo::default())];
    let valid = seal_batch(&key, &params, &items).unwrap();
    let empty = seal_batch(&key, &params, &[]).unwrap();
    let garbage_payload = seal(&key, &params, b"\xff\xff\xff\xff not postcard").unwrap();
    let mut flipped = valid.clone();
    let n = flipped.len();
    flipped[n / 2] ^= 1;
    let seeds: [(&str, &[u8]); 6] = [
        ("valid-batch", &valid),
        ("valid-empty", &empty),
        ("garbage-payload", &garbage_payload),
        ("flipped", &flipped),
        ("truncated", &valid[..valid.len() / 3]),
        ("bad-version", b"\x09abc"),
    ];
    for (name, bytes) in seeds {
        std::fs::write(format!("{dir}/{name}"), bytes).unwrap();
    }
}
