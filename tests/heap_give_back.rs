//! `lvsd::heap::give_back` returns freed memory that glibc would otherwise keep: small blocks
//! freed around a few that stay (as a status of 10,000 services leaves them) stay resident
//! until it is called. Its own test binary, so that no other test allocates meanwhile.

fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

#[test]
fn freed_small_blocks_go_back_to_the_system() {
    if !cfg!(target_env = "gnu") {
        return;
    }
    // On a thread of its own, like the daemon's workers (glibc gives it an arena of its own).
    std::thread::spawn(|| {
        let blocks: Vec<Box<[u8; 100]>> = (0..600_000).map(|i| Box::new([i as u8; 100])).collect();
        let before = resident_kib();
        // Keep one block in 64: the pages between them are free but not at the heap's end.
        let kept: Vec<Box<[u8; 100]>> = blocks.into_iter().step_by(64).collect();
        let freed = resident_kib();
        lvsd::heap::give_back();
        let after = resident_kib();
        eprintln!("resident: {before} KiB with every block, {freed} KiB after freeing, {after} KiB after give_back");
        // (The list of the blocks, 4.7 MB, goes back at once: it is one big allocation.)
        assert!(freed + 8 * 1024 > before, "glibc kept the freed blocks resident ({before} -> {freed} KiB)");
        assert!(after + 20_000 < freed, "give_back returned less than 20 MB ({freed} -> {after} KiB)");
        drop(kept);
    })
    .join()
    .unwrap();
}
