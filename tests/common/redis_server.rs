//! A private redis-server on a chosen loopback port, for tests that kill
//! and restart a server. Killed when dropped.

pub struct OwnRedis {
    child: std::process::Child,
    pub port: u16,
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl OwnRedis {
    /// A server that keeps what it is given, as `RedisStore::connect`
    /// requires: an append-only file (in a directory of its own, kept
    /// across a restart on the same port) and no eviction.
    pub fn start(port: u16) -> Self {
        let dir = std::env::temp_dir().join(format!("jr-own-redis-{port}"));
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        Self::start_with(
            port,
            &[
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                dir.to_str().expect("a UTF-8 temp path"),
            ],
        )
    }

    /// A server started with `settings` after the bind address and port.
    pub fn start_with(port: u16, settings: &[&str]) -> Self {
        let port_arg = port.to_string();
        let mut args = vec!["--bind", "127.0.0.1", "--port", &port_arg];
        args.extend_from_slice(settings);
        let child = std::process::Command::new("redis-server")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/services.sh installs it)");
        OwnRedis { child, port }
    }

    /// Freezes the server (SIGSTOP): its sockets stay open, nothing is
    /// answered.
    pub fn pause(&self) {
        assert!(self.signal("-STOP"));
    }

    /// Resumes a paused server (SIGCONT).
    pub fn resume(&self) {
        assert!(self.signal("-CONT"));
    }

    fn signal(&self, sig: &str) -> bool {
        std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
