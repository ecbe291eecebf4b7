//! Test harness: runs the real `teller` binary as a child process on a free
//! loopback port with a private data directory, and stops it on drop.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct TestServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

/// Builds a configuration file from the embedded default with `settings`
/// (`key = value` lines) replacing the default lines of the same keys.
pub fn config_text(settings: &[(&str, &str)]) -> String {
    let mut text = teller_node::config::DEFAULT_CONFIG.to_string();
    for (key, value) in settings {
        let prefix = format!("{key} = ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no setting {key} in the default configuration"))
            .to_string();
        text = text.replacen(&line, &format!("{key} = {value}"), 1);
    }
    text
}

/// A loopback port no other server of this test process has been given.
/// Every shard binds with SO_REUSEPORT, so two test servers handed the same
/// port would both bind it and share connections; cargo runs test binaries
/// one at a time, so remembering ports within the process is enough.
fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
        let port = listener.local_addr().expect("local address").port();
        if GIVEN.lock().expect("port registry").insert(port) {
            return port;
        }
    }
}

impl TestServer {
    /// A server with the default configuration and `shards` shards.
    pub fn start(shards: usize) -> TestServer {
        TestServer::with_config(shards, &[], "")
    }

    /// A server whose config file has `settings` replaced and `extra` appended.
    pub fn with_config(shards: usize, settings: &[(&str, &str)], extra: &str) -> TestServer {
        let dir = std::env::temp_dir().join(format!(
            "teller-test-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the test directory");
        let mut last_error = String::new();
        for _attempt in 0..3 {
            // A failed attempt's server removed the directory when dropped.
            std::fs::create_dir_all(&dir).expect("creating the test directory");
            let port = free_port();
            let config = format!("{}\n{extra}", config_text(settings));
            let config_path = dir.join("teller.toml");
            std::fs::write(&config_path, config).expect("writing the config");
            let log = std::fs::File::create(dir.join("teller.log")).expect("creating the log");
            let child = Command::new(env!("CARGO_BIN_EXE_teller"))
                .args(["start", "--listen", &format!("127.0.0.1:{port}")])
                .args(["--shards", &shards.to_string()])
                .arg("--data-dir")
                .arg(dir.join("data"))
                .arg("--config")
                .arg(&config_path)
                .env("TELLER_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawning teller");
            let mut server = TestServer {
                child: Some(child),
                port,
                dir: dir.clone(),
            };
            match server.wait_listening(shards) {
                Ok(()) => return server,
                Err(error) => {
                    last_error = format!("{error}\n--- log ---\n{}", server.log());
                    server.kill();
                }
            }
        }
        panic!("teller did not start: {last_error}");
    }

    fn wait_listening(&mut self, shards: usize) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("teller exited early: {status}"));
            }
            let listening = self.log().matches("shard listening").count();
            if listening >= shards && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("timed out waiting for teller to listen".into())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("teller.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=teller dbname=teller",
            self.port
        )
    }

    pub async fn connect(&self) -> tokio_postgres::Client {
        self.connect_with(&self.url()).await.expect("connecting")
    }

    pub async fn connect_with(
        &self,
        url: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    pub fn raw(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connecting");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends `signal` and waits for the exit status.
    pub fn stop_with(&mut self, signal: i32) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) with a pid we spawned and a valid signal number.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("waiting") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("teller did not exit after signal {signal}\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop_with(libc::SIGTERM);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Frontend message builders for raw-socket tests.
pub mod frame {
    pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&196608i32.to_be_bytes());
        for (k, v) in params {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut out = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    pub fn typed(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    pub fn query(sql: &str) -> Vec<u8> {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        typed(b'Q', &body)
    }
}

/// Reads backend messages until ReadyForQuery or an ErrorResponse with
/// severity FATAL, or EOF. Returns (tag, body) pairs.
pub fn read_messages(stream: &mut TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut messages = Vec::new();
    loop {
        let mut header = [0u8; 5];
        if read_exact_or_eof(stream, &mut header).is_err() {
            return messages;
        }
        let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        if read_exact_or_eof(stream, &mut body).is_err() {
            return messages;
        }
        let tag = header[0];
        let fatal = tag == b'E' && error_field(&body, b'S').as_deref() == Some("FATAL");
        messages.push((tag, body));
        if tag == b'Z' || fatal {
            return messages;
        }
    }
}

fn read_exact_or_eof(stream: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<()> {
    stream.read_exact(buf)
}

/// A field of an ErrorResponse/NoticeResponse body.
pub fn error_field(body: &[u8], field: u8) -> Option<String> {
    let mut i = 0;
    while i < body.len() && body[i] != 0 {
        let code = body[i];
        let end = body[i + 1..].iter().position(|&b| b == 0)? + i + 1;
        if code == field {
            return Some(String::from_utf8_lossy(&body[i + 1..end]).into_owned());
        }
        i = end + 1;
    }
    None
}

/// The SQLSTATE of the first ErrorResponse among `messages`.
pub fn first_error(messages: &[(u8, Vec<u8>)]) -> Option<(String, String)> {
    messages.iter().find(|(t, _)| *t == b'E').map(|(_, b)| {
        (
            error_field(b, b'C').unwrap_or_default(),
            error_field(b, b'M').unwrap_or_default(),
        )
    })
}

/// Connects and completes a trust startup, returning the socket.
pub fn raw_session(server: &TestServer) -> TcpStream {
    let mut stream = server.raw();
    stream
        .write_all(&frame::startup(&[
            ("user", "teller"),
            ("database", "teller"),
        ]))
        .expect("startup");
    let messages = read_messages(&mut stream);
    assert_eq!(
        messages.last().map(|m| m.0),
        Some(b'Z'),
        "startup completes"
    );
    stream
}

/// True once the peer has closed the connection (EOF) within the read timeout.
pub fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}
