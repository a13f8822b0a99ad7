//! The disk's fsync latency where the database lives, for benches/load.sh: writes one
//! small block and waits for `fdatasync` (what SQLite does on Linux for each commit in
//! WAL mode with `synchronous=FULL`), many times, and prints the percentiles.
//!
//! `cargo run --release --example fsync_probe -- DIR [COUNT]`
//!
//! The probe file (`DIR/fsync-probe.tmp`) is removed at the end. Each write is 4 KB (one
//! SQLite page, about one small check) at the next offset of a 4 MB file that wraps
//! around, like a write-ahead log that is reset after a checkpoint.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::time::Instant;

const BLOCK: usize = 4096;
const WRAP: u64 = 4 << 20;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: fsync_probe DIR [COUNT]");
        std::process::exit(2);
    };
    let count: usize = match args.next().map(|c| c.parse()) {
        None => 2000,
        Some(Ok(count)) if count > 0 => count,
        Some(_) => {
            eprintln!("COUNT must be a positive whole number");
            std::process::exit(2);
        }
    };
    let path = std::path::Path::new(&dir).join("fsync-probe.tmp");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let block = [0x5a_u8; BLOCK];
    let mut offset = 0;
    let mut micros = Vec::with_capacity(count);
    for _ in 0..count {
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(&block)?;
        let started = Instant::now();
        file.sync_data()?;
        micros.push(started.elapsed().as_secs_f64() * 1e6);
        offset = (offset + BLOCK as u64) % WRAP;
    }
    drop(file);
    std::fs::remove_file(&path)?;
    micros.sort_by(f64::total_cmp);
    let at =
        |q: f64| micros[((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1];
    println!(
        "fsync n={count} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        at(0.50) / 1000.0,
        at(0.99) / 1000.0,
        at(1.0) / 1000.0
    );
    Ok(())
}
