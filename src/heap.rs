//! Freed memory given back to the system after a big, rare piece of work.

/// glibc keeps what a thread freed for that thread's later allocations. After a status or a
/// metrics page of 10,000 services (tens of MB in small allocations on a worker thread) the
/// daemon would hold that memory for nothing until the next one, tens of seconds later; this
/// returns it (malloc_trim(3)). Not glibc: nothing to do.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own lists of free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}
