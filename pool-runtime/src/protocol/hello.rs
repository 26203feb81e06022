//! HELLO: what a worker says at start-up (protocol version, registry, process, host).

use super::*;

/// The start-up report of one worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) version: u32,
    pub(crate) fingerprint: u64,
    pub(crate) pid: u32,
    pub(crate) host: String,
    pub(crate) tasks: Vec<String>,
}

impl Hello {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        put_u32(&mut buf, self.version);
        put_u64(&mut buf, self.fingerprint);
        put_u32(&mut buf, self.pid);
        put_str(&mut buf, &self.host);
        put_u32(&mut buf, len_u32(self.tasks.len()));
        for task in &self.tasks {
            put_str(&mut buf, task);
        }
        buf
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Hello, ProtocolError> {
        let mut r = Reader::new(bytes, "HELLO");
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(malformed(format!(
                "HELLO frame: protocol version {version}, this master speaks {VERSION} \
                 (are all ranks running the same binary?)"
            )));
        }
        let fingerprint = r.u64("fingerprint")?;
        let pid = r.u32("pid")?;
        let host = r.str("host name")?.to_owned();
        let n = r.u32("task count")?;
        let mut tasks = Vec::new();
        for _ in 0..n {
            // Each name is read from bytes that exist, so a huge `n` cannot allocate much.
            tasks.push(r.str("task name")?.to_owned());
        }
        r.finish()?;
        Ok(Hello {
            version,
            fingerprint,
            pid,
            host,
            tasks,
        })
    }
}
