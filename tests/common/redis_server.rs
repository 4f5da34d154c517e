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
    pub fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
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
