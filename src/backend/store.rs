//! The backend's records in SQLite: users (registered from signed server states, then
//! committed, with their protected template and attempt budget), their devices,
//! one-time challenges, and an append-only audit log of registrations, attempts, locks
//! and deletions (ids and times only). Schema migrations by `PRAGMA user_version`; WAL
//! journal; every write, with its audit entry, in one transaction.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::messages::{Device, DeviceType};
use crate::protect::rotation::Template;

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
    // Version 2 states: a protected template in place of the biometric public key (users
    // of version 1 keep their devices but can no longer recover), the attempt budget, the
    // ids of deleted users (their server states never register again), and the events of
    // locks and user deletion.
    "
    ALTER TABLE users ADD COLUMN template BLOB;
    ALTER TABLE users DROP COLUMN public_key;
    ALTER TABLE users ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN last_failure INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE users ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE deleted_users (keyless_id TEXT PRIMARY KEY, at INTEGER NOT NULL);
    DROP TRIGGER audit_no_update;
    DROP TRIGGER audit_no_delete;
    DROP INDEX audit_by_user;
    ALTER TABLE audit RENAME TO audit_v1;
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        event TEXT NOT NULL CHECK (event IN
            ('REGISTERED', 'COMMITTED', 'DEVICE_BOUND', 'BINDING_REFUSED', 'DEVICE_DELETED',
             'LOCKED', 'UNLOCKED', 'USER_DELETED')),
        keyless_id TEXT NOT NULL,
        device_id TEXT
    );
    INSERT INTO audit (seq, at, event, keyless_id, device_id)
        SELECT seq, at, event, keyless_id, device_id FROM audit_v1 ORDER BY seq;
    DROP TABLE audit_v1;
    CREATE INDEX audit_by_user ON audit(keyless_id, event, at);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
",
];

/// Unspent, unexpired challenges a user may hold at once.
pub const MAX_OPEN_CHALLENGES: usize = 8;

/// How many refused attempts a user is allowed: each costs an attacker a challenge, the
/// waits grow, and the account locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Refused attempts in a row that need no wait.
    pub free: u32,
    /// The wait after the first refusal beyond `free`, doubling with each further one.
    pub backoff_seconds: u64,
    /// Refused attempts in a row that lock the user until [`Store::unlock`].
    pub lock_after: u32,
}

impl Default for Budget {
    /// Three free refusals, then a wait after each further one (1, 2, 4, … 32 minutes),
    /// and the lock at the tenth: at a false-match rate of 1e-4 an impostor gets in with
    /// odds of about 1 in 1,000 before an administrator has to act.
    fn default() -> Budget {
        Budget {
            free: 3,
            backoff_seconds: 60,
            lock_after: 10,
        }
    }
}

impl Budget {
    /// Seconds to wait after the last of `failures` refusals in a row.
    pub fn wait(&self, failures: u32) -> u64 {
        match failures.checked_sub(self.free) {
            None | Some(0) => 0,
            Some(beyond) => self
                .backoff_seconds
                .saturating_mul(1u64 << (beyond - 1).min(32)),
        }
    }
}

/// How a binding attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    Bound,
    /// Refused; so many more refusals lock the user.
    Refused {
        left: u32,
    },
    /// Refused, and the user is now locked.
    Locked,
}

/// What the audit log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditEvent {
    Registered,
    Committed,
    DeviceBound,
    BindingRefused,
    DeviceDeleted,
    Locked,
    Unlocked,
    UserDeleted,
}

impl AuditEvent {
    const ALL: [AuditEvent; 8] = [
        AuditEvent::Registered,
        AuditEvent::Committed,
        AuditEvent::DeviceBound,
        AuditEvent::BindingRefused,
        AuditEvent::DeviceDeleted,
        AuditEvent::Locked,
        AuditEvent::Unlocked,
        AuditEvent::UserDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::Registered => "REGISTERED",
            AuditEvent::Committed => "COMMITTED",
            AuditEvent::DeviceBound => "DEVICE_BOUND",
            AuditEvent::BindingRefused => "BINDING_REFUSED",
            AuditEvent::DeviceDeleted => "DEVICE_DELETED",
            AuditEvent::Locked => "LOCKED",
            AuditEvent::Unlocked => "UNLOCKED",
            AuditEvent::UserDeleted => "USER_DELETED",
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
    /// The protected template.
    pub template: &'a Template,
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
    /// The user was deleted: their states never register again.
    Deleted,
    /// No such user (or device, or challenge).
    NotFound,
    /// The challenge was used already or has expired.
    ChallengeSpent,
    /// The user's open challenges and refusals use up the attempt budget.
    TooManyChallenges,
    /// The user must wait so many seconds after recent refusals.
    BackingOff { seconds: u64 },
    /// Too many refusals in a row: only an unlock lets the user try again.
    Locked,
    /// The user was registered from a version-1 state, which cannot be matched.
    NoTemplate,
    /// The database failed.
    Database(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Exists => f.write_str("the user is already registered"),
            StoreError::Deleted => f.write_str("the user was deleted"),
            StoreError::NotFound => f.write_str("no such user, device or challenge"),
            StoreError::ChallengeSpent => f.write_str("the challenge is used or expired"),
            StoreError::TooManyChallenges => f.write_str("too many open challenges"),
            StoreError::BackingOff { seconds } => write!(f, "wait {seconds} s"),
            StoreError::Locked => f.write_str("the user is locked"),
            StoreError::NoTemplate => f.write_str("the user has no version-2 template"),
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
    budget: Budget,
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
        let mut store = Store {
            conn,
            budget: Budget::default(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The store with `budget` in place of the default one.
    pub fn with_budget(mut self, budget: Budget) -> Store {
        self.budget = budget;
        self
    }

    /// A write transaction, holding the database's write lock from the start.
    fn write(&mut self) -> rusqlite::Result<Transaction<'_>> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let tx = self.write()?;
        let version: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            return Err(StoreError::Database(format!(
                "schema version {version}, made by a newer recognize-agent (this one knows {})",
                MIGRATIONS.len()
            )));
        }
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
        let deleted: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM deleted_users WHERE keyless_id = ?1)",
            [user.keyless_id],
            |r| r.get(0),
        )?;
        if deleted {
            return Err(StoreError::Deleted);
        }
        let inserted = tx.execute(
            "INSERT INTO users (keyless_id, template, agent_key, scenario, created, committed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            params![
                user.keyless_id,
                user.template.to_bytes(),
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
            committed_user(&tx, keyless_id)?;
            return Ok(());
        }
        record(&tx, now, AuditEvent::Committed, keyless_id, None)?;
        tx.commit()?;
        Ok(())
    }

    /// A committed user's protected template.
    pub fn template(&self, keyless_id: &str) -> Result<Template, StoreError> {
        let stored = committed_user(&self.conn, keyless_id)?
            .template
            .ok_or(StoreError::NoTemplate)?;
        Template::from_bytes(&stored).ok_or_else(|| {
            StoreError::Database(format!("the stored template of {keyless_id} is damaged"))
        })
    }

    /// Records a one-time challenge for a committed user at time `now`, valid until
    /// `expires_at`, if the attempt budget allows. Open challenges count as refusals to
    /// come: while refusals and open challenges stay within the free ones, challenges are
    /// issued at once; beyond, only one may be open, and only once the back-off of the
    /// last refusal has passed, so tries cannot be gathered to run in parallel; refusals
    /// and open challenges never pass the lock together; a locked user gets none.
    /// Expired challenges are dropped on the way, and a user holds at most
    /// [`MAX_OPEN_CHALLENGES`], so the table stays bounded.
    pub fn add_challenge(
        &mut self,
        keyless_id: &str,
        nonce: &str,
        now: u64,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let budget = self.budget;
        let tx = self.write()?;
        let user = committed_user(&tx, keyless_id)?;
        if user.template.is_none() {
            return Err(StoreError::NoTemplate);
        }
        // Locked, or past a lock lowered since the last refusal.
        if user.locked || user.failures >= budget.lock_after {
            return Err(StoreError::Locked);
        }
        tx.execute(
            "DELETE FROM challenges WHERE expires_at <= ?1",
            [now as i64],
        )?;
        let open: u32 = tx.query_row(
            "SELECT count(*) FROM challenges WHERE keyless_id = ?1",
            [keyless_id],
            |r| r.get(0),
        )?;
        let pending = user.failures + open;
        let beyond_free = pending >= budget.free;
        if open as usize >= MAX_OPEN_CHALLENGES
            || pending >= budget.lock_after
            || (beyond_free && open > 0)
        {
            return Err(StoreError::TooManyChallenges);
        }
        let ready = user.last_failure.saturating_add(budget.wait(user.failures));
        if beyond_free && now < ready {
            return Err(StoreError::BackingOff {
                seconds: ready - now,
            });
        }
        tx.execute(
            "INSERT INTO challenges (nonce, keyless_id, expires_at) VALUES (?1, ?2, ?3)",
            params![nonce, keyless_id, expires_at as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Spends (deletes) `nonce` for `keyless_id` at time `now` and, if it was live,
    /// records the attempt: a match binds `device` (id, type, public key) and clears the
    /// user's refusals; a refusal counts against the budget and may lock the user. All in
    /// one transaction, with its audit entries. A spent or expired challenge fails and
    /// records nothing.
    pub fn attempt(
        &mut self,
        keyless_id: &str,
        nonce: &str,
        now: u64,
        device: (&str, DeviceType, &[u8]),
        matched: bool,
    ) -> Result<Attempt, StoreError> {
        let budget = self.budget;
        let tx = self.write()?;
        let spent = tx.execute(
            "DELETE FROM challenges WHERE nonce = ?1 AND keyless_id = ?2 AND expires_at > ?3",
            params![nonce, keyless_id, now as i64],
        )?;
        if spent == 0 {
            return Err(StoreError::ChallengeSpent);
        }
        let user = committed_user(&tx, keyless_id)?;
        let (device_id, device_type, public_key) = device;
        let outcome = if matched && !user.locked {
            let device = (device_id, device_type, Some(public_key));
            insert_device(&tx, keyless_id, device, now)?;
            tx.execute(
                "UPDATE users SET failures = 0 WHERE keyless_id = ?1",
                [keyless_id],
            )?;
            record(
                &tx,
                now,
                AuditEvent::DeviceBound,
                keyless_id,
                Some(device_id),
            )?;
            Attempt::Bound
        } else {
            let failures = user.failures.saturating_add(1);
            let locked = user.locked || failures >= budget.lock_after;
            tx.execute(
                "UPDATE users SET failures = ?2, last_failure = ?3, locked = ?4
                 WHERE keyless_id = ?1",
                params![keyless_id, failures, now as i64, locked],
            )?;
            record(
                &tx,
                now,
                AuditEvent::BindingRefused,
                keyless_id,
                Some(device_id),
            )?;
            if locked && !user.locked {
                drop_challenges(&tx, keyless_id)?;
                record(&tx, now, AuditEvent::Locked, keyless_id, None)?;
            }
            match locked {
                true => Attempt::Locked,
                false => Attempt::Refused {
                    left: budget.lock_after - failures,
                },
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Lifts a user's lock, clears its refusals and open challenges, at time `now` (a
    /// management call).
    pub fn unlock(&mut self, keyless_id: &str, now: u64) -> Result<(), StoreError> {
        let tx = self.write()?;
        committed_user(&tx, keyless_id)?;
        tx.execute(
            "UPDATE users SET failures = 0, last_failure = 0, locked = 0 WHERE keyless_id = ?1",
            [keyless_id],
        )?;
        drop_challenges(&tx, keyless_id)?;
        record(&tx, now, AuditEvent::Unlocked, keyless_id, None)?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes a user with its template, devices and challenges, at time `now`, and keeps
    /// the id so that the user's server state never registers again: every state of
    /// theirs is useless from then on. The audit log keeps its entries.
    pub fn delete_user(&mut self, keyless_id: &str, now: u64) -> Result<(), StoreError> {
        let tx = self.write()?;
        let deleted = tx.execute("DELETE FROM users WHERE keyless_id = ?1", [keyless_id])?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        tx.execute(
            "INSERT INTO deleted_users (keyless_id, at) VALUES (?1, ?2)",
            params![keyless_id, now as i64],
        )?;
        record(&tx, now, AuditEvent::UserDeleted, keyless_id, None)?;
        tx.commit()?;
        Ok(())
    }

    /// A committed user's devices, oldest first.
    pub fn devices(&self, keyless_id: &str) -> Result<Vec<Device>, StoreError> {
        committed_user(&self.conn, keyless_id)?;
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

/// What matching needs of a committed user.
struct User {
    template: Option<Vec<u8>>,
    failures: u32,
    last_failure: u64,
    locked: bool,
}

/// A committed user, read on `conn` (or a transaction).
fn committed_user(conn: &Connection, keyless_id: &str) -> Result<User, StoreError> {
    conn.query_row(
        "SELECT template, failures, last_failure, locked FROM users
         WHERE keyless_id = ?1 AND committed = 1",
        [keyless_id],
        |r| {
            Ok(User {
                template: r.get(0)?,
                failures: r.get(1)?,
                last_failure: r.get::<_, i64>(2)?.max(0) as u64,
                locked: r.get(3)?,
            })
        },
    )
    .optional()?
    .ok_or(StoreError::NotFound)
}

/// Drops a user's open challenges.
fn drop_challenges(conn: &Connection, keyless_id: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM challenges WHERE keyless_id = ?1", [keyless_id])?;
    Ok(())
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

    /// A fresh directory named after `tag` and this process, and a database path in it.
    fn scratch_db(tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("backend.db");
        (dir, path)
    }

    /// A unit vector as every user's template.
    const ENROLLED: Template = Template({
        let mut v = [0f32; crate::vision::embed::DIM];
        v[0] = 1.0;
        v
    });

    fn user<'a>(id: &'a str, device: &'a str) -> NewUser<'a> {
        NewUser {
            keyless_id: id,
            template: &ENROLLED,
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
        assert_eq!(store.template("u1").unwrap(), ENROLLED);
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
        assert_eq!(store.template("u2"), Err(StoreError::NotFound));
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
        assert_eq!(
            store.attempt("u1", "n1", 150, sdk, true),
            Ok(Attempt::Bound)
        );
        // Replayed, expired, another user's: refused, nothing bound.
        let again = ("s2", DeviceType::Sdk, &[3u8; 32][..]);
        for (id, nonce, now) in [("u1", "n1", 150), ("u1", "n2", 200), ("u2", "n3", 150)] {
            assert_eq!(
                store.attempt(id, nonce, now, again, true),
                Err(StoreError::ChallengeSpent)
            );
        }
        // A refusal spends the challenge and binds nothing.
        assert_eq!(
            store.attempt("u1", "n3", 150, again, false),
            Ok(Attempt::Refused { left: 9 })
        );
        assert_eq!(
            store.attempt("u1", "n3", 150, again, true),
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
        // A budget generous enough that the bound on open challenges is what stops them.
        let budget = Budget {
            free: 20,
            backoff_seconds: 60,
            lock_after: 30,
        };
        let mut store = Store::open(Path::new(":memory:"))
            .unwrap()
            .with_budget(budget);
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
        let (dir, path) = scratch_db("ra-store");
        {
            let mut store = Store::open(&path).unwrap();
            store.register(&user("u1", "d1"), true).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.devices("u1").unwrap().len(), 1);
        // A database from a newer version is refused, not changed.
        store
            .conn
            .pragma_update(None, "user_version", MIGRATIONS.len() + 1)
            .unwrap();
        assert!(matches!(Store::open(&path), Err(StoreError::Database(e)) if e.contains("newer")));
        store
            .conn
            .pragma_update(None, "user_version", MIGRATIONS.len())
            .unwrap();
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
        store.attempt("u1", "n1", 104, sdk, true).unwrap();
        store
            .attempt(
                "u1",
                "n2",
                105,
                ("s2", DeviceType::Sdk, &[4u8; 32][..]),
                false,
            )
            .unwrap();
        assert!(store.attempt("u1", "n2", 105, sdk, true).is_err());
        store.delete_device("u1", "d1", 106).unwrap();
        assert!(store.delete_device("u1", "d1", 107).is_err());
        store.unlock("u1", 108).unwrap();
        store.delete_user("u1", 109).unwrap();
        assert_eq!(store.delete_user("u1", 110), Err(StoreError::NotFound));
        // A deleted user's state never registers again.
        assert_eq!(
            store.register(&user("u1", "d3"), true),
            Err(StoreError::Deleted)
        );
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
                (108, Unlocked, None),
                (109, UserDeleted, None),
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
        assert_eq!(store.audit(0, 100).unwrap().len(), 7);
    }

    /// Refusals: free ones, then growing waits, then a lock that only an unlock lifts;
    /// open challenges count as refusals to come; a match clears the count; other users
    /// are not affected.
    #[test]
    fn the_attempt_budget_backs_off_then_locks() {
        let budget = Budget::default();
        assert_eq!(
            (0..=6).map(|f| budget.wait(f)).collect::<Vec<_>>(),
            [0, 0, 0, 0, 60, 120, 240]
        );
        let mut store = Store::open(Path::new(":memory:"))
            .unwrap()
            .with_budget(budget);
        store.register(&user("u1", "d1"), true).unwrap();
        store.register(&user("u2", "d2"), true).unwrap();
        let mut now = 1000;
        let refuse = |store: &mut Store, now: u64, i: u32| {
            let nonce = format!("n{i}");
            store.add_challenge("u1", &nonce, now, now + 100)?;
            let device = format!("s{i}");
            store.attempt(
                "u1",
                &nonce,
                now,
                (&device, DeviceType::Sdk, &[3; 32]),
                false,
            )
        };
        for i in 0..3 {
            assert_eq!(
                refuse(&mut store, now, i),
                Ok(Attempt::Refused { left: 9 - i })
            );
        }
        // A match clears the count.
        store.add_challenge("u1", "ok", now, now + 100).unwrap();
        let sdk = ("ok", DeviceType::Sdk, &[3u8; 32][..]);
        assert_eq!(
            store.attempt("u1", "ok", now, sdk, true),
            Ok(Attempt::Bound)
        );
        for i in 0..9 {
            let outcome = refuse(&mut store, now, 10 + i);
            assert_eq!(outcome, Ok(Attempt::Refused { left: 9 - i }), "refusal {i}");
            let wait = budget.wait(i + 1);
            if wait > 0 {
                assert_eq!(
                    store.add_challenge("u1", "early", now + wait - 1, now + wait + 100),
                    Err(StoreError::BackingOff { seconds: 1 })
                );
            }
            now += wait;
        }
        // Other users are not held back.
        store.add_challenge("u2", "other", now, now + 100).unwrap();
        // Nine refusals and one open challenge: at the lock, no second challenge.
        store.add_challenge("u1", "last", now, now + 100).unwrap();
        assert_eq!(
            store.add_challenge("u1", "more", now, now + 100),
            Err(StoreError::TooManyChallenges)
        );
        // The tenth refusal locks; waiting does not help.
        let device = ("s", DeviceType::Sdk, &[3u8; 32][..]);
        assert_eq!(
            store.attempt("u1", "last", now, device, false),
            Ok(Attempt::Locked)
        );
        let much_later = now + 365 * 24 * 3600;
        assert_eq!(
            store.add_challenge("u1", "late", much_later, much_later + 100),
            Err(StoreError::Locked)
        );
        // A lock lowered below the user's refusals (a new setting) holds at once.
        store.unlock("u1", much_later).unwrap();
        for i in 0..2 {
            assert!(refuse(&mut store, much_later, 100 + i).is_ok());
        }
        let lowered = Budget {
            lock_after: 2,
            ..budget
        };
        store.budget = lowered;
        assert_eq!(
            store.add_challenge("u1", "lowered", much_later, much_later + 100),
            Err(StoreError::Locked)
        );
        store.budget = budget;
        store.unlock("u1", much_later).unwrap();
        // Free tries can be gathered; no more.
        for i in 0..3 {
            store
                .add_challenge("u1", &format!("g{i}"), much_later, much_later + 100)
                .unwrap();
        }
        assert_eq!(
            store.add_challenge("u1", "g3", much_later, much_later + 100),
            Err(StoreError::TooManyChallenges)
        );
        store.unlock("u1", much_later).unwrap();
        store
            .add_challenge("u1", "late", much_later, much_later + 100)
            .unwrap();
        assert_eq!(
            store.attempt("u1", "late", much_later, device, true),
            Ok(Attempt::Bound)
        );
        let events: Vec<AuditEvent> = store
            .audit(0, 1000)
            .unwrap()
            .into_iter()
            .filter(|e| e.keyless_id == "u1")
            .map(|e| e.event)
            .filter(|e| !matches!(e, AuditEvent::BindingRefused))
            .collect();
        use AuditEvent::*;
        assert_eq!(
            events,
            [
                Registered,
                Committed,
                DeviceBound,
                Locked,
                Unlocked,
                Unlocked,
                Unlocked,
                DeviceBound
            ]
        );
    }

    /// A database of version 1 migrates: its users keep their devices and audit log, and
    /// cannot be matched.
    #[test]
    fn a_version_1_database_migrates() {
        let (dir, path) = scratch_db("ra-store-v1");
        {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            for sql in &MIGRATIONS[..2] {
                tx.execute_batch(sql).unwrap();
            }
            tx.pragma_update(None, "user_version", 2).unwrap();
            tx.execute_batch(
                "INSERT INTO users VALUES ('old', x'01', x'02', 'SELFIE', 5, 1);
                 INSERT INTO devices VALUES ('d', 'old', 'BACKUP', NULL, 5);
                 INSERT INTO audit (at, event, keyless_id, device_id)
                     VALUES (5, 'REGISTERED', 'old', 'd');",
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.devices("old").unwrap().len(), 1);
        assert_eq!(store.template("old"), Err(StoreError::NoTemplate));
        assert_eq!(
            store.add_challenge("old", "n", 10, 20),
            Err(StoreError::NoTemplate)
        );
        store.delete_user("old", 11).unwrap();
        let events: Vec<AuditEvent> = store
            .audit(0, 10)
            .unwrap()
            .iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(events, [AuditEvent::Registered, AuditEvent::UserDeleted]);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
