//! Node configuration: a TOML file (the embedded default is
//! `teller.default.toml`, which documents every setting) with command-line
//! overrides. Every limit of the node is here, with its unit in its name.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The configuration `teller start` uses when no file is given.
pub const DEFAULT_CONFIG: &str = include_str!("../teller.default.toml");

/// Total registered I/O memory shared out among shards when not configured:
/// leaves headroom under the common 8 MiB RLIMIT_MEMLOCK.
pub const IO_MEMORY_AUTO_TOTAL_BYTES: usize = 6 * 1024 * 1024;
/// Smallest registered I/O memory a shard gets.
pub const IO_MEMORY_MIN_BYTES: usize = 256 * 1024;
/// Most shards a node runs.
pub const SHARDS_MAX: usize = 256;
/// Longest an idle shard may spin before parking, in microseconds.
pub const SPIN_BEFORE_PARK_MAX_US: u64 = 10_000;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    /// Read from the `[storage]` table too (see [`RangesConfig`]).
    #[serde(skip)]
    pub ranges: RangesConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub shards: usize,
    pub max_connections_per_shard: usize,
    pub max_frame_bytes: usize,
    pub max_prepared_statements: usize,
    pub max_portals: usize,
    pub auth_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    pub spin_before_park_us: u64,
    pub io_memory_bytes: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub method: AuthMethodName,
    #[serde(default)]
    pub users: Vec<UserConfig>,
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig {
            method: AuthMethodName::Trust,
            users: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum AuthMethodName {
    #[serde(rename = "trust")]
    Trust,
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub password: Option<String>,
    pub scram: Option<String>,
}

/// Each shard's storage engine and the Raft host of its ranges.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// A memtable is frozen and flushed once it holds about this many bytes.
    pub memtable_bytes: usize,
    /// Size of each preallocated WAL segment file; a write batch must fit in
    /// one segment.
    pub wal_segment_bytes: u64,
    /// Decoded SSTable blocks cached per shard.
    pub block_cache_bytes: usize,
    /// Tick of the ranges' Raft groups, in milliseconds.
    pub raft_tick_ms: u64,
}

/// Bounds of the storage settings.
pub const MEMTABLE_BYTES_MIN: usize = 64 * 1024;
pub const MEMTABLE_BYTES_MAX: usize = 1 << 30;
pub const WAL_SEGMENT_BYTES_MIN: u64 = 1024 * 1024;
pub const WAL_SEGMENT_BYTES_MAX: u64 = 1 << 30;
pub const RAFT_TICK_MS_MAX: u64 = 1000;

impl Default for StorageConfig {
    fn default() -> StorageConfig {
        StorageConfig {
            memtable_bytes: 64 * 1024 * 1024,
            wal_segment_bytes: 16 * 1024 * 1024,
            block_cache_bytes: 64 * 1024 * 1024,
            raft_tick_ms: 10,
        }
    }
}

impl StorageConfig {
    pub fn raft_tick(&self) -> Duration {
        Duration::from_millis(self.raft_tick_ms)
    }

    fn validate(&self) -> Result<(), String> {
        if !(MEMTABLE_BYTES_MIN..=MEMTABLE_BYTES_MAX).contains(&self.memtable_bytes) {
            return Err(format!(
                "storage.memtable_bytes {} outside [{MEMTABLE_BYTES_MIN}, {MEMTABLE_BYTES_MAX}]",
                self.memtable_bytes
            ));
        }
        if !(WAL_SEGMENT_BYTES_MIN..=WAL_SEGMENT_BYTES_MAX).contains(&self.wal_segment_bytes)
            || !self.wal_segment_bytes.is_multiple_of(4096)
        {
            return Err(format!(
                "storage.wal_segment_bytes {} must be a multiple of 4096 in [{WAL_SEGMENT_BYTES_MIN}, {WAL_SEGMENT_BYTES_MAX}]",
                self.wal_segment_bytes
            ));
        }
        if !(1..=RAFT_TICK_MS_MAX).contains(&self.raft_tick_ms) {
            return Err(format!(
                "storage.raft_tick_ms {} outside [1, {RAFT_TICK_MS_MAX}]",
                self.raft_tick_ms
            ));
        }
        Ok(())
    }
}

/// How the node splits ranges and spreads them over its shards. The keys
/// live in the `[storage]` table of the file (`storage.range_split_bytes`,
/// `storage.rebalance_interval_ms`, `storage.range_split_requests_per_sec`);
/// they are kept apart from
/// [`StorageConfig`] because they configure ranges, not a shard's engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangesConfig {
    /// A range splits once its versions take about this many bytes.
    pub range_split_bytes: u64,
    /// How often shard 0 looks for a range to move between shards, in
    /// milliseconds; at most one move per interval. 0 disables moves.
    pub rebalance_interval_ms: u64,
    /// A range serving more requests a second than this over a whole
    /// second splits by load. 0 disables splitting by load.
    pub range_split_requests_per_sec: u64,
}

/// Bounds of the range settings.
pub const RANGE_SPLIT_BYTES_MAX: u64 = 1 << 40;
pub const REBALANCE_INTERVAL_MS_MAX: u64 = 3_600_000;

impl Default for RangesConfig {
    fn default() -> RangesConfig {
        RangesConfig {
            range_split_bytes: teller_kv::config::RANGE_SPLIT_BYTES_DEFAULT,
            rebalance_interval_ms: 1000,
            range_split_requests_per_sec: 2500,
        }
    }
}

impl RangesConfig {
    /// Takes the range settings out of the `[storage]` table (so that the
    /// rest deserializes strictly).
    fn take_from(table: &mut toml::Table) -> Result<RangesConfig, String> {
        let mut config = RangesConfig::default();
        let Some(toml::Value::Table(storage)) = table.get_mut("storage") else {
            return Ok(config);
        };
        let mut take = |key: &str| -> Result<Option<u64>, String> {
            match storage.remove(key) {
                None => Ok(None),
                Some(toml::Value::Integer(n)) => u64::try_from(n)
                    .map(Some)
                    .map_err(|_| format!("storage.{key} must not be negative")),
                Some(other) => Err(format!(
                    "invalid configuration: storage.{key} must be an integer, not {}",
                    other.type_str()
                )),
            }
        };
        if let Some(n) = take("range_split_bytes")? {
            config.range_split_bytes = n;
        }
        if let Some(n) = take("rebalance_interval_ms")? {
            config.rebalance_interval_ms = n;
        }
        if let Some(n) = take("range_split_requests_per_sec")? {
            config.range_split_requests_per_sec = n;
        }
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let min = teller_kv::config::RANGE_SPLIT_BYTES_MIN;
        if !(min..=RANGE_SPLIT_BYTES_MAX).contains(&self.range_split_bytes) {
            return Err(format!(
                "storage.range_split_bytes {} outside [{min}, {RANGE_SPLIT_BYTES_MAX}]",
                self.range_split_bytes
            ));
        }
        if self.rebalance_interval_ms > REBALANCE_INTERVAL_MS_MAX {
            return Err(format!(
                "storage.rebalance_interval_ms {} exceeds the maximum {REBALANCE_INTERVAL_MS_MAX}",
                self.rebalance_interval_ms
            ));
        }
        Ok(())
    }

    /// The interval between rebalancing rounds; `None` when disabled.
    pub fn rebalance_interval(&self) -> Option<Duration> {
        (self.rebalance_interval_ms > 0).then(|| Duration::from_millis(self.rebalance_interval_ms))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            level: "info".to_string(),
        }
    }
}

/// Overrides from the command line.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub shards: Option<usize>,
}

impl Config {
    /// Parses a configuration file's text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let invalid = |e: &dyn std::fmt::Display| format!("invalid configuration: {e}");
        let mut table: toml::Table = toml::from_str(text).map_err(|e| invalid(&e))?;
        let ranges = RangesConfig::take_from(&mut table)?;
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e| invalid(&e))?;
        config.ranges = ranges;
        Ok(config)
    }

    /// The embedded default configuration.
    pub fn default_config() -> Config {
        Config::parse(DEFAULT_CONFIG).expect("the embedded default configuration parses")
    }

    pub fn apply(&mut self, overrides: Overrides) {
        if let Some(listen) = overrides.listen {
            self.server.listen = listen;
        }
        if let Some(data_dir) = overrides.data_dir {
            self.server.data_dir = data_dir;
        }
        if let Some(shards) = overrides.shards {
            self.server.shards = shards;
        }
    }

    /// Checks values that parse but make no sense, and resolves automatic ones.
    pub fn validate(&mut self, online_cpus: usize) -> Result<(), String> {
        let server = &mut self.server;
        server
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| format!("server.listen {:?}: {e}", server.listen))?;
        if server.shards == 0 {
            server.shards = online_cpus.max(1);
        }
        if server.shards > SHARDS_MAX {
            return Err(format!(
                "server.shards {} exceeds the maximum {SHARDS_MAX}",
                server.shards
            ));
        }
        if server.max_connections_per_shard == 0 {
            return Err("server.max_connections_per_shard must be at least 1".into());
        }
        if server.max_frame_bytes < 1024 {
            return Err("server.max_frame_bytes must be at least 1024".into());
        }
        if server.spin_before_park_us > SPIN_BEFORE_PARK_MAX_US {
            return Err(format!(
                "server.spin_before_park_us {} exceeds the maximum {SPIN_BEFORE_PARK_MAX_US}",
                server.spin_before_park_us
            ));
        }
        if server.auth_timeout_secs == 0 {
            return Err("server.auth_timeout_secs must be at least 1".into());
        }
        if server.io_memory_bytes == 0 {
            server.io_memory_bytes =
                (IO_MEMORY_AUTO_TOTAL_BYTES / server.shards).max(IO_MEMORY_MIN_BYTES);
        }
        self.storage.validate()?;
        self.ranges.validate()?;
        if self.auth.method == AuthMethodName::ScramSha256 && self.auth.users.is_empty() {
            return Err("auth.method scram-sha-256 needs at least one [[auth.users]] entry".into());
        }
        for user in &self.auth.users {
            match (&user.password, &user.scram) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(format!(
                        "auth.users {:?}: give exactly one of password or scram",
                        user.name
                    ))
                }
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.server.listen.parse().expect("validated")
    }

    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.server.idle_timeout_secs > 0)
            .then(|| Duration::from_secs(self.server.idle_timeout_secs))
    }

    pub fn spin_before_park(&self) -> Duration {
        Duration::from_micros(self.server.spin_before_park_us)
    }

    pub fn auth_timeout(&self) -> Duration {
        Duration::from_secs(self.server.auth_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_and_validates() {
        let mut config = Config::default_config();
        config.validate(2).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:5433");
        assert_eq!(config.server.shards, 2);
        assert_eq!(
            config.server.io_memory_bytes,
            IO_MEMORY_AUTO_TOTAL_BYTES / 2
        );
        assert_eq!(config.auth.method, AuthMethodName::Trust);
        assert_eq!(config.idle_timeout(), None);
        let defaults = StorageConfig::default();
        assert_eq!(config.storage.memtable_bytes, defaults.memtable_bytes);
        assert_eq!(config.storage.wal_segment_bytes, defaults.wal_segment_bytes);
        assert_eq!(config.storage.block_cache_bytes, defaults.block_cache_bytes);
        assert_eq!(config.storage.raft_tick_ms, defaults.raft_tick_ms);
        assert_eq!(config.ranges, RangesConfig::default());
        assert_eq!(config.ranges.range_split_bytes, 64 * 1024 * 1024);
    }

    #[test]
    fn range_settings_are_read_from_the_storage_table_and_checked() {
        let text = DEFAULT_CONFIG
            .replace("range_split_bytes = 67108864", "range_split_bytes = 4096")
            .replace("rebalance_interval_ms = 1000", "rebalance_interval_ms = 0")
            .replace(
                "range_split_requests_per_sec = 2500",
                "range_split_requests_per_sec = 0",
            );
        let mut config = Config::parse(&text).unwrap();
        config.validate(2).unwrap();
        assert_eq!(config.ranges.range_split_bytes, 4096);
        assert_eq!(config.ranges.range_split_requests_per_sec, 0);
        assert_eq!(config.ranges.rebalance_interval(), None);
        let small =
            DEFAULT_CONFIG.replace("range_split_bytes = 67108864", "range_split_bytes = 10");
        let mut config = Config::parse(&small).unwrap();
        assert!(config
            .validate(2)
            .unwrap_err()
            .contains("range_split_bytes"));
        let text = DEFAULT_CONFIG.replace(
            "range_split_bytes = 67108864",
            "range_split_bytes = \"big\"",
        );
        assert!(Config::parse(&text).unwrap_err().contains("integer"));
        let text = DEFAULT_CONFIG.replace("range_split_bytes = 67108864", "range_split_bytes = -1");
        assert!(Config::parse(&text).unwrap_err().contains("negative"));
    }

    #[test]
    fn bad_storage_settings_are_rejected() {
        let mut config = Config::default_config();
        config.storage.wal_segment_bytes = 5000;
        assert!(config
            .validate(2)
            .unwrap_err()
            .contains("wal_segment_bytes"));
        let mut config = Config::default_config();
        config.storage.memtable_bytes = 10;
        assert!(config.validate(2).unwrap_err().contains("memtable_bytes"));
        let mut config = Config::default_config();
        config.storage.raft_tick_ms = 0;
        assert!(config.validate(2).unwrap_err().contains("raft_tick_ms"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let text = DEFAULT_CONFIG.replace("shards = 0", "shards = 0\nshardz = 3");
        assert!(Config::parse(&text).unwrap_err().contains("shardz"));
        let mut config = Config::default_config();
        config.server.listen = "nowhere".into();
        assert!(config.validate(2).is_err());
        let mut config = Config::default_config();
        config.auth.method = AuthMethodName::ScramSha256;
        assert!(config.validate(2).unwrap_err().contains("at least one"));
        let mut config = Config::default_config();
        config.server.spin_before_park_us = SPIN_BEFORE_PARK_MAX_US + 1;
        assert!(config
            .validate(2)
            .unwrap_err()
            .contains("spin_before_park_us"));
    }

    #[test]
    fn overrides_win() {
        let mut config = Config::default_config();
        config.apply(Overrides {
            listen: Some("127.0.0.1:7000".into()),
            data_dir: Some("/tmp/x".into()),
            shards: Some(3),
        });
        config.validate(2).unwrap();
        assert_eq!(config.listen_addr().port(), 7000);
        assert_eq!(config.server.shards, 3);
    }
}
