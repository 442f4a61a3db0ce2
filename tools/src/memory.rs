//! The process's resident memory, for tools that report what a cache costs per entry.

/// Resident set size in bytes (`VmRSS` of `/proc/self/status`), `None` where there is no such
/// file (not Linux) or it cannot be read.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn rss_grows_with_memory_the_process_touches() {
        let before = super::rss_bytes().expect("VmRSS on Linux");
        let block = std::hint::black_box(vec![1u8; 64 << 20]);
        let after = super::rss_bytes().expect("VmRSS on Linux");
        assert!(after >= before + (48 << 20), "{before} -> {after}");
        assert_eq!(std::hint::black_box(&block)[12345], 1);
    }
}
