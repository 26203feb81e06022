//! This host's name, as the kernel reports it (`gethostname`): asked once, with or without MPI.
//!
//! On Linux this is what `MPI_Get_processor_name` reports too (Open MPI and MPICH both ask
//! `gethostname`), so the names are the same whether or not the process started MPI; every
//! rank asks the same way, so the master can tell which workers share its host.

use std::sync::OnceLock;

static HOST: OnceLock<String> = OnceLock::new();

/// This host's name, if [`host_name`] has been asked already.
pub(crate) fn known_host_name() -> Option<&'static str> {
    HOST.get().map(String::as_str)
}

/// The name of this host (`gethostname`); asked once.
pub(crate) fn host_name() -> String {
    HOST.get_or_init(|| gethostname().unwrap_or_else(|| "unknown-host".to_owned()))
        .clone()
}

/// `gethostname(2)`, or `None` when it fails or names nothing.
fn gethostname() -> Option<String> {
    // HOST_NAME_MAX is 64 on Linux; 256 covers every system, plus the terminator.
    let mut buf = [0u8; 257];
    // SAFETY: `buf` is writable for `buf.len() - 1` bytes; the last byte stays 0, so the
    // result is terminated even when the name was truncated.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..len]).trim().to_owned();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kernels_host_name() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .expect("Linux: /proc/sys/kernel/hostname");
        assert_eq!(super::host_name(), kernel.trim());
        assert_eq!(super::known_host_name(), Some(kernel.trim()));
    }
}
