//! The backend's records in SQLite: users (registered from signed server states, then
//! committed), their devices, one-time challenges, and an append-only audit log of
//! registrations, bindings and deletions (ids and times only). Schema migrations by
//! `PRAGMA user_version`; WAL journal; every write, with its audit entry, in one
//! transaction.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::messages::{Device, DeviceType};

/// Schema versions, applied in order; `user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE users (
        keyless_id TEXT PRIMARY KEY,
        public_key BLOB NOT NULL,
        agent_key BLOB NOT NULL,
        scenario TEXT NOT NULL,
        created INTEGER NOT NULL,
        committed INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        keyless_id TEXT NOT NULL REFERENCES users(keyless_id) ON DELETE CASCADE,
        type TEXT NOT NULL CHECK (type IN ('BACKUP', 'TEMPORARY', 'SDK')),
        public_key BLOB,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX devices_by_user ON devices(keyless_id);
    CREATE TABLE challenges (
        nonce TEXT PRIMARY KEY,
        keyless_id TEXT NOT NULL REFERENCES users(keyless_id) ON DELETE CASCADE,
        expires_at INTEGER NOT NULL
    );
",
    "
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        event TEXT NOT NULL CHECK (event IN
            ('REGISTERED', 'COMMITTED', 'DEVICE_BOUND', 'BINDING_REFUSED', 'DEVICE_DELETED')),
        keyless_id TEXT NOT NULL,
        device_id TEXT
    );
    CREATE INDEX audit_by_user ON audit(keyless_id, event, at);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
",
];

/// Unspent, unexpired challenges a user may hold at once.
pub const MAX_OPEN_CHALLENGES: usize = 8;

/// Refused bindings (proofs that did not verify) a user may have within
/// [`FAILURE_WINDOW_SECONDS`]; beyond, no new challenge is issued until they age out.
pub const MAX_RECENT_FAILURES: usize = 5;
pub const FAILURE_WINDOW_SECONDS: u64 = 15 * 60;

/// What the audit log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditEvent {
    Registered,
    Committed,
    DeviceBound,
    BindingRefused,
    DeviceDeleted,
}

impl AuditEvent {
    const ALL: [AuditEvent; 5] = [
        AuditEvent::Registered,
        AuditEvent::Committed,
        AuditEvent::DeviceBound,
        AuditEvent::BindingRefused,
        AuditEvent::DeviceDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::Registered => "REGISTERED",
            AuditEvent::Committed => "COMMITTED",
            AuditEvent::DeviceBound => "DEVICE_BOUND",
            AuditEvent::BindingRefused => "BINDING_REFUSED",
            AuditEvent::DeviceDeleted => "DEVICE_DELETED",
        }
    }
}

/// One audit log entry: what happened to whom, when; no keys, no biometric data.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub seq: u64,
    /// Unix seconds.
    pub at: u64,
    pub event: AuditEvent,
    pub keyless_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

/// A user to register.
pub struct NewUser<'a> {
    pub keyless_id: &'a str,
    pub public_key: &'a [u8],
    pub agent_key: &'a [u8],
    pub scenario: &'a str,
    pub created: u64,
    /// The device of the enrolment's client state.
    pub device: (&'a str, DeviceType),
}

/// What a store operation can run into.
#[derive(Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The user is already registered.
    Exists,
    /// No such user (or device, or challenge).
    NotFound,
    /// The challenge was used already or has expired.
    ChallengeSpent,
    /// The user has [`MAX_OPEN_CHALLENGES`] unexpired challenges already.
    TooManyChallenges,
    /// The user's recent bindings were refused [`MAX_RECENT_FAILURES`] times.
    TooManyFailures,
    /// The database failed.
    Database(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Exists => f.write_str("the user is already registered"),
            StoreError::NotFound => f.write_str("no such user, device or challenge"),
            StoreError::ChallengeSpent => f.write_str("the challenge is used or expired"),
            StoreError::TooManyChallenges => f.write_str("too many open challenges"),
            StoreError::TooManyFailures => f.write_str("too many refused bindings"),
            StoreError::Database(why) => write!(f, "database: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating it if needed) the database at `path`, migrated to the current
    /// schema; `:memory:` for a private in-memory one.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Every commit reaches the disk before it is acknowledged: an answered registration
        // survives a power cut, not only a crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    /// A write transaction, holding the database's write lock from the start.
    fn write(&mut self) -> rusqlite::Result<Transaction<'_>> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let tx = self.write()?;
        let version: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for sql in MIGRATIONS.iter().skip(version) {
            tx.execute_batch(sql)?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len())?;
        tx.commit()?;
        Ok(())
    }

    /// Registers a user (uncommitted unless `committed`) with its enrolment device, in
    /// one transaction.
    pub fn register(&mut self, user: &NewUser, committed: bool) -> Result<(), StoreError> {
        let tx = self.write()?;
        let inserted = tx.execute(
            "INSERT INTO users (keyless_id, public_key, agent_key, scenario, created, committed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            params![
                user.keyless_id,
                user.public_key,
                user.agent_key,
                user.scenario,
                user.created as i64,
                committed
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Exists);
        }
        let (device_id, device_type) = user.device;
        let device = (device_id, device_type, None);
        insert_device(&tx, user.keyless_id, device, user.created)?;
        let at = user.created;
        record(
            &tx,
            at,
            AuditEvent::Registered,
            user.keyless_id,
            Some(device_id),
        )?;
        if committed {
            record(&tx, at, AuditEvent::Committed, user.keyless_id, None)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Commits a registered user at time `now`.
    pub fn commit(&mut self, keyless_id: &str, now: u64) -> Result<(), StoreError> {
        let tx = self.write()?;
        let changed = tx.execute(
            "UPDATE users SET committed = 1 WHERE keyless_id = ?1 AND committed = 0",
            [keyless_id],
        )?;
        if changed == 0 {
            // Committing twice is not an error, nor logged twice.
            committed_key(&tx, keyless_id)?;
            return Ok(());
        }
        record(&tx, now, AuditEvent::Committed, keyless_id, None)?;
        tx.commit()?;
        Ok(())
    }

    /// A committed user's biometric public key.
    pub fn public_key(&self, keyless_id: &str) -> Result<Vec<u8>, StoreError> {
        committed_key(&self.conn, keyless_id)
    }

    /// Records a one-time challenge for a committed user at time `now`, valid until
    /// `expires_at`. Expired challenges are dropped on the way, and a user holds at most
    /// [`MAX_OPEN_CHALLENGES`] live ones, so the table stays bounded. None is issued while
    /// the user has [`MAX_RECENT_FAILURES`] refused bindings in the last
    /// [`FAILURE_WINDOW_SECONDS`]: each failed proof costs an attacker a challenge, so
    /// guessing online is slow.
    pub fn add_challenge(
        &mut self,
        keyless_id: &str,
        nonce: &str,
        now: u64,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let tx = self.write()?;
        committed_key(&tx, keyless_id)?;
        tx.execute(
            "DELETE FROM challenges WHERE expires_at <= ?1",
            [now as i64],
        )?;
        let live: usize = tx.query_row(
            "SELECT count(*) FROM challenges WHERE keyless_id = ?1",
            [keyless_id],
            |r| r.get(0),
        )?;
        if live >= MAX_OPEN_CHALLENGES {
            return Err(StoreError::TooManyChallenges);
        }
        let failures: usize = tx.query_row(
            "SELECT count(*) FROM audit WHERE keyless_id = ?1 AND event = ?2 AND at > ?3",
            params![
                keyless_id,
                AuditEvent::BindingRefused.as_str(),
                now.saturating_sub(FAILURE_WINDOW_SECONDS) as i64
            ],
            |r| r.get(0),
        )?;
        if failures >= MAX_RECENT_FAILURES {
            return Err(StoreError::TooManyFailures);
        }
        tx.execute(
            "INSERT INTO challenges (nonce, keyless_id, expires_at) VALUES (?1, ?2, ?3)",
            params![nonce, keyless_id, expires_at as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Spends (deletes) `nonce` for `keyless_id` at time `now` and, if it was live and
    /// the caller found the proof valid, binds `device` (id, type, public key); all in
    /// one transaction. Returns whether it bound. A spent or expired challenge fails and
    /// binds nothing; an invalid proof spends the challenge too.
    pub fn bind_device(
        &mut self,
        keyless_id: &str,
        nonce: &str,
        now: u64,
        device: (&str, DeviceType, &[u8]),
        proof_is_valid: bool,
    ) -> Result<bool, StoreError> {
        let tx = self.write()?;
        let spent = tx.execute(
            "DELETE FROM challenges WHERE nonce = ?1 AND keyless_id = ?2 AND expires_at > ?3",
            params![nonce, keyless_id, now as i64],
        )?;
        if spent == 0 {
            return Err(StoreError::ChallengeSpent);
        }
        let (device_id, device_type, public_key) = device;
        let event = if proof_is_valid {
            let device = (device_id, device_type, Some(public_key));
            insert_device(&tx, keyless_id, device, now)?;
            AuditEvent::DeviceBound
        } else {
            AuditEvent::BindingRefused
        };
        record(&tx, now, event, keyless_id, Some(device_id))?;
        tx.commit()?;
        Ok(proof_is_valid)
    }

    /// A committed user's devices, oldest first.
    pub fn devices(&self, keyless_id: &str) -> Result<Vec<Device>, StoreError> {
        committed_key(&self.conn, keyless_id)?;
        let mut query = self.conn.prepare(
            "SELECT device_id, type, created_at FROM devices
             WHERE keyless_id = ?1 ORDER BY created_at, rowid",
        )?;
        let rows = query.query_map([keyless_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut devices = Vec::new();
        for row in rows {
            let (device_id, kind, created_at) = row?;
            let device_type = DeviceType::parse(&kind)
                .ok_or_else(|| StoreError::Database(format!("unknown device type {kind}")))?;
            devices.push(Device {
                device_id,
                device_type,
                created_at: created_at.max(0) as u64,
            });
        }
        Ok(devices)
    }

    /// Deletes one of a user's devices at time `now`.
    pub fn delete_device(
        &mut self,
        keyless_id: &str,
        device_id: &str,
        now: u64,
    ) -> Result<(), StoreError> {
        let tx = self.write()?;
        let deleted = tx.execute(
            "DELETE FROM devices WHERE keyless_id = ?1 AND device_id = ?2",
            [keyless_id, device_id],
        )?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        record(
            &tx,
            now,
            AuditEvent::DeviceDeleted,
            keyless_id,
            Some(device_id),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Up to `limit` audit entries after entry `after` (0 for the first), oldest first.
    pub fn audit(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let mut query = self.conn.prepare(
            "SELECT seq, at, event, keyless_id, device_id FROM audit
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = query.query_map(params![after as i64, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (seq, at, event, keyless_id, device_id) = row?;
            let event = AuditEvent::ALL
                .into_iter()
                .find(|e| e.as_str() == event)
                .ok_or_else(|| StoreError::Database(format!("unknown audit event {event}")))?;
            entries.push(AuditEntry {
                seq: seq.max(0) as u64,
                at: at.max(0) as u64,
                event,
                keyless_id,
                device_id,
            });
        }
        Ok(entries)
    }
}

/// Appends an entry to the audit log, in the caller's transaction.
fn record(
    conn: &Connection,
    at: u64,
    event: AuditEvent,
    keyless_id: &str,
    device_id: Option<&str>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit (at, event, keyless_id, device_id) VALUES (?1, ?2, ?3, ?4)",
        params![at as i64, event.as_str(), keyless_id, device_id],
    )?;
    Ok(())
}

/// A committed user's biometric public key, read on `conn` (or a transaction).
fn committed_key(conn: &Connection, keyless_id: &str) -> Result<Vec<u8>, StoreError> {
    conn.query_row(
        "SELECT public_key FROM users WHERE keyless_id = ?1 AND committed = 1",
        [keyless_id],
        |r| r.get(0),
    )
    .optional()?
    .ok_or(StoreError::NotFound)
}

/// Adds a device (id, type, its own public key if it has one) to a user.
fn insert_device(
    conn: &Connection,
    keyless_id: &str,
    (device_id, device_type, public_key): (&str, DeviceType, Option<&[u8]>),
    created_at: u64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO devices (device_id, keyless_id, type, public_key, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            device_id,
            keyless_id,
            device_type.as_str(),
            public_key,
            created_at as i64
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user<'a>(id: &'a str, device: &'a str) -> NewUser<'a> {
        NewUser {
            keyless_id: id,
            public_key: &[1; 32],
            agent_key: &[2; 32],
            scenario: "SELFIE",
            created: 100,
            device: (device, DeviceType::Backup),
        }
    }

    #[test]
    fn users_register_commit_and_list_devices() {
        let mut store = Store::open(Path::new(":memory:")).unwrap();
        store.register(&user("u1", "d1"), false).unwrap();
        assert_eq!(
            store.register(&user("u1", "d9"), false),
            Err(StoreError::Exists)
        );
        // Uncommitted users are invisible.
        assert_eq!(store.devices("u1"), Err(StoreError::NotFound));
        store.commit("u1", 100).unwrap();
        assert_eq!(store.commit("nobody", 100), Err(StoreError::NotFound));
        assert_eq!(store.public_key("u1").unwrap(), vec![1; 32]);
        let listed = store.devices("u1").unwrap();
        assert_eq!(
            listed,
            vec![Device {
                device_id: "d1".into(),
                device_type: DeviceType::Backup,
                created_at: 100
            }]
        );
        store.delete_device("u1", "d1", 100).unwrap();
        assert_eq!(
            store.delete_device("u1", "d1", 100),
            Err(StoreError::NotFound)
        );
        assert!(store.devices("u1").unwrap().is_empty());
    }

    /// A failed registration (its device clashes) leaves no user behind.
    #[test]
    fn a_failed_registration_leaves_nothing() {
        let mut store = Store::open(Path::new(":memory:")).unwrap();
        store.register(&user("u1", "d1"), true).unwrap();
        assert!(matches!(
            store.register(&user("u2", "d1"), true),
            Err(StoreError::Database(_))
        ));
        assert_eq!(store.public_key("u2"), Err(StoreError::NotFound));
    }

    #[test]
    fn challenges_are_one_time_and_expire() {
        let mut store = Store::open(Path::new(":memory:")).unwrap();
        store.register(&user("u1", "d1"), true).unwrap();
        assert_eq!(
            store.add_challenge("nobody", "n0", 100, 200),
            Err(StoreError::NotFound)
        );
        for nonce in ["n1", "n2", "n3"] {
            store.add_challenge("u1", nonce, 100, 200).unwrap();
        }
        let sdk = ("s1", DeviceType::Sdk, &[3u8; 32][..]);
        assert_eq!(store.bind_device("u1", "n1", 150, sdk, true), Ok(true));
        // Replayed, expired, another user's: refused, nothing bound.
        let again = ("s2", DeviceType::Sdk, &[3u8; 32][..]);
        for (id, nonce, now) in [("u1", "n1", 150), ("u1", "n2", 200), ("u2", "n3", 150)] {
            assert_eq!(
                store.bind_device(id, nonce, now, again, true),
                Err(StoreError::ChallengeSpent)
            );
        }
        // A bad proof spends the challenge and binds nothing.
        assert_eq!(store.bind_device("u1", "n3", 150, again, false), Ok(false));
        assert_eq!(
            store.bind_device("u1", "n3", 150, again, true),
            Err(StoreError::ChallengeSpent)
        );
        let types: Vec<DeviceType> = store
            .devices("u1")
            .unwrap()
            .iter()
            .map(|d| d.device_type)
            .collect();
        assert_eq!(types, [DeviceType::Backup, DeviceType::Sdk]);
    }

    #[test]
    fn open_challenges_are_bounded_and_expired_ones_dropped() {
        let mut store = Store::open(Path::new(":memory:")).unwrap();
        store.register(&user("u1", "d1"), false).unwrap();
        // Uncommitted users get no challenge.
        assert_eq!(
            store.add_challenge("u1", "n", 100, 200),
            Err(StoreError::NotFound)
        );
        store.commit("u1", 100).unwrap();
        for i in 0..MAX_OPEN_CHALLENGES {
            store
                .add_challenge("u1", &format!("a{i}"), 100, 200)
                .unwrap();
        }
        assert_eq!(
            store.add_challenge("u1", "b", 150, 250),
            Err(StoreError::TooManyChallenges)
        );
        // Once those expire they are purged and new ones are accepted.
        store.add_challenge("u1", "c", 200, 300).unwrap();
        let rows: usize = store
            .conn
            .query_row("SELECT count(*) FROM challenges", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn migrations_run_once_on_a_file() {
        let dir = std::env::temp_dir().join(format!("ra-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("backend.db");
        {
            let mut store = Store::open(&path).unwrap();
            store.register(&user("u1", "d1"), true).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.devices("u1").unwrap().len(), 1);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Each registration, commit, binding (bound or refused) and deletion leaves one
    /// entry, in order; failed operations leave none; entries cannot be changed.
    #[test]
    fn the_audit_log_records_every_change_and_only_grows() {
        use AuditEvent::*;
        let mut store = Store::open(Path::new(":memory:")).unwrap();
        store.register(&user("u1", "d1"), false).unwrap();
        store.commit("u1", 101).unwrap();
        store.commit("u1", 102).unwrap();
        assert!(store.register(&user("u1", "d2"), true).is_err());
        store.add_challenge("u1", "n1", 103, 200).unwrap();
        store.add_challenge("u1", "n2", 103, 200).unwrap();
        let sdk = ("s1", DeviceType::Sdk, &[3u8; 32][..]);
        store.bind_device("u1", "n1", 104, sdk, true).unwrap();
        store
            .bind_device(
                "u1",
                "n2",
                105,
                ("s2", DeviceType::Sdk, &[4u8; 32][..]),
                false,
            )
            .unwrap();
        assert!(store.bind_device("u1", "n2", 105, sdk, true).is_err());
        store.delete_device("u1", "d1", 106).unwrap();
        assert!(store.delete_device("u1", "d1", 107).is_err());
        let log: Vec<(u64, AuditEvent, Option<String>)> = store
            .audit(0, 100)
            .unwrap()
            .into_iter()
            .map(|e| (e.at, e.event, e.device_id))
            .collect();
        let d = |s: &str| Some(s.to_string());
        assert_eq!(
            log,
            [
                (100, Registered, d("d1")),
                (101, Committed, None),
                (104, DeviceBound, d("s1")),
                (105, BindingRefused, d("s2")),
                (106, DeviceDeleted, d("d1")),
            ]
        );
        // Paging by sequence number.
        let tail = store.audit(3, 100).unwrap();
        assert_eq!(tail.first().map(|e| e.event), Some(BindingRefused));
        assert_eq!(store.audit(0, 2).unwrap().len(), 2);
        // Append-only, even for SQL run on the file.
        for sql in ["UPDATE audit SET keyless_id = 'x'", "DELETE FROM audit"] {
            let err = store.conn.execute(sql, []).unwrap_err().to_string();
            assert!(err.contains("append-only"), "{err}");
        }
        assert_eq!(store.audit(0, 100).unwrap().len(), 5);
    }

    /// After [`MAX_RECENT_FAILURES`] refused bindings, no challenge is issued until the
    /// window has passed; other users are not affected.
    #[test]
    fn refused_bindings_hold_back_new_challenges() {
        let mut store = Store::open(Path::new(":memory:")).unwrap();
        store.register(&user("u1", "d1"), true).unwrap();
        store.register(&user("u2", "d2"), true).unwrap();
        let device = ("s", DeviceType::Sdk, &[3u8; 32][..]);
        for i in 0..MAX_RECENT_FAILURES as u64 {
            let nonce = format!("n{i}");
            store.add_challenge("u1", &nonce, 1000 + i, 2000).unwrap();
            let device = (format!("s{i}"), DeviceType::Sdk, &[3u8; 32][..]);
            let device = (device.0.as_str(), device.1, device.2);
            assert_eq!(
                store.bind_device("u1", &nonce, 1000 + i, device, false),
                Ok(false)
            );
        }
        let last_failure = 1000 + MAX_RECENT_FAILURES as u64 - 1;
        assert_eq!(
            store.add_challenge("u1", "late", last_failure + 1, 3000),
            Err(StoreError::TooManyFailures)
        );
        store
            .add_challenge("u2", "other", last_failure + 1, 3000)
            .unwrap();
        // Once the oldest failure is out of the window, one more attempt is allowed.
        let later = 1000 + FAILURE_WINDOW_SECONDS;
        store
            .add_challenge("u1", "later", later, later + 100)
            .unwrap();
        assert_eq!(
            store.bind_device("u1", "later", later, device, true),
            Ok(true)
        );
    }
}
