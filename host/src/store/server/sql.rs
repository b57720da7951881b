//! The statements of the server store, for PostgreSQL and for MariaDB/MySQL.
//!
//! Most are written once, in PostgreSQL's syntax with their parameters numbered in the order
//! they appear, so that MariaDB's `?` placeholders bind in the same order; [`Sql::mysql`]
//! rewrites them. The few that differ (upserts, the id of a new row) are written twice.

/// Every statement the server store runs, for one backend.
#[derive(Debug)]
pub struct Sql {
    /// Adds a player unless the account exists (then changes nothing).
    pub insert_player: String,
    pub player_by_account: String,
    pub insert_session: String,
    pub session: String,
    pub delete_session: String,
    pub count_sessions: String,
    /// An operator's change begins here: the record, its row locked until the change ends.
    pub lock_player: String,
    /// A turn's one read, locking nothing: the record, its version, the module's data and the
    /// session's expiry, from one snapshot (one statement).
    pub turn_read: String,
    /// [`Sql::turn_read_keyed`] of many turns in one statement: the same columns from the
    /// same rows, then each turn's place in the batch ([`Sql::TURN_READ_BATCH_PLACE`]). One
    /// parameter, the turns as a JSON array of `{"place", "player", "module", "token"}` (the
    /// token's hash), a keyed turn's also with `"idem_key"` and `"key_expired_at"`; a row for
    /// each turn whose player has a record, the key's columns `NULL` for a turn without one.
    pub turn_read_batch: String,
    /// [`Sql::turn_read`] of a keyed command: two more columns, the fingerprint and the reply
    /// stored under the key if it is not expired, still one statement. Parameters: those of
    /// `turn_read` but the last, then (player, key, expired at) twice, then the player.
    pub turn_read_keyed: String,
    /// A turn's write of the record alone, bumping its version: it applies only if the
    /// version is still the one the turn read and the session still holds (no row: run the
    /// turn again). Parameters: the record's five columns, `updated_at`, the player, the
    /// version read, the session's token hash, the player again, now.
    pub turn_write: String,
    /// A turn's write of the record and the module's data, in one statement. On MariaDB (a
    /// multi-table `UPDATE`) the module's data must have a row already; the first write of
    /// a player's module data is [`Sql::turn_write`] and [`Sql::upsert_module_data`] in one
    /// transaction. Parameters: the record's five columns, `updated_at`, the module's data,
    /// the player, the module, the version read, the session's token hash, the player again,
    /// now (`turn::Write` binds both statements).
    pub turn_write_with_data: String,
    pub upsert_module_data: String,
    /// PostgreSQL: [`Sql::turn_write`] of a keyed command, storing the reply under the key in
    /// the same statement (a data-modifying CTE: the key's row is written only if the
    /// record's was). Parameters: `turn_write`'s, then key, fingerprint, reply, created at.
    /// Empty on MariaDB, which writes [`Sql::insert_key`] in the turn's transaction instead.
    pub turn_write_keyed: String,
    /// PostgreSQL: [`Sql::turn_write_with_data`] of a keyed command, likewise. Empty on
    /// MariaDB.
    pub turn_write_with_data_keyed: String,
    /// A key's reply stored (over an expired row of the same key). Parameters: player, key,
    /// fingerprint, reply, created at.
    pub insert_key: String,
    /// Up to a number of keys created at or before a moment deleted (the background sweep).
    pub delete_expired_keys: String,
    pub account_of: String,
    pub player: String,
    pub modules_of: String,
    pub update_balances: String,
    pub delete_sessions_of: String,
    /// Adds an audit row; on PostgreSQL it returns the new id, on MariaDB the driver does.
    pub insert_audit: String,
    pub audit_of_player: String,
    pub audit_of_all: String,
    /// A page of one module's saved data, in player id order (the saved-data check's scan).
    pub module_data_page: String,
    pub count_module_data: String,
    /// A player's module data replaced only if it is still what was read.
    pub replace_module_data: String,
    pub ping: String,
}

const INSERT_PLAYER: &str = "INSERT INTO players (player_id, account, name, head_img, gold, diamond, items, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const PLAYER_COLUMNS: &str = "name, head_img, gold, diamond, items";
/// A turn's write of the record: only over the version the turn read, only while its session
/// holds.
const TURN_WRITE: &str = "UPDATE players SET name = $1, head_img = $2, gold = $3, diamond = $4, items = $5, updated_at = $6, version = version + 1 \
     WHERE player_id = $7 AND version = $8 \
     AND EXISTS (SELECT 1 FROM sessions WHERE token_hash = $9 AND player_id = $10 AND expires_at > $11)";
/// PostgreSQL's [`TURN_WRITE`] inside a write with the module's data, numbered to bind as
/// MariaDB's multi-table `UPDATE` does; `bumped` is the player it wrote, if any.
const BUMP_WITH_DATA_POSTGRES: &str = "UPDATE players SET name = $1, head_img = $2, gold = $3, diamond = $4, items = $5, updated_at = $6, version = version + 1 \
     WHERE player_id = $8 AND version = $10 \
     AND EXISTS (SELECT 1 FROM sessions WHERE token_hash = $11 AND player_id = $12 AND expires_at > $13) \
     RETURNING player_id";
/// The module's data written only if the record's was (`bumped`).
const DATA_AFTER_BUMP_POSTGRES: &str =
    "INSERT INTO module_data (player_id, module, data) SELECT player_id, $9, $7 FROM bumped \
     ON CONFLICT (player_id, module) DO UPDATE SET data = excluded.data";
/// The turn's reply stored under its key: the columns, and what replaces an expired row that
/// the sweep has not deleted yet (a live one cannot be there: the turn's read found none, and
/// a turn that wrote it since bumped the version, so this write applies nothing).
/// The type of a MariaDB `JSON_TABLE` column holding a player's id, a module's name or a
/// token's hash, in the tables' collation, so that the keys compare (and use their indexes)
/// as stored.
pub(super) const MYSQL_KEY: &str = "VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin";
/// The same for an idempotency key, stored as ASCII (`0004_idempotency_keys.sql`).
pub(super) const MYSQL_IDEM_KEY: &str = "VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin";
pub(super) const KEY_COLUMNS: &str = "player_id, idem_key, fingerprint, reply, created_at";
pub(super) const KEY_CONFLICT_POSTGRES: &str = "ON CONFLICT (player_id, idem_key) DO UPDATE SET fingerprint = excluded.fingerprint, reply = excluded.reply, created_at = excluded.created_at";
pub(super) const KEY_CONFLICT_MYSQL: &str = "ON DUPLICATE KEY UPDATE fingerprint = VALUES(fingerprint), reply = VALUES(reply), created_at = VALUES(created_at)";
const INSERT_AUDIT: &str = "INSERT INTO audit (at_ms, operator, action, player_id, reason, state_before, state_after) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const AUDIT_COLUMNS: &str =
    "id, at_ms, operator, action, player_id, reason, state_before, state_after";

/// The `SELECT` of a turn's read, up to its `FROM` ([`Sql::TURN_READ_COLUMNS`] columns): the
/// record of the `players` row it is over, its version, the module's data and the session's
/// expiry, for the player, module, token hash and the player again as `[player, module, token,
/// session_player]` names them (parameters, or a batch's columns). The single and keyed
/// reads begin with it; the batched read has the same first columns.
fn turn_read_columns([player, module, token, session_player]: [&str; 4]) -> String {
    format!(
        "SELECT {PLAYER_COLUMNS}, version, \
         (SELECT data FROM module_data WHERE player_id = {player} AND module = {module}), \
         (SELECT expires_at FROM sessions WHERE token_hash = {token} AND player_id = {session_player})"
    )
}

/// A keyed read's column `column` (`fingerprint` or `reply`) of the reply stored under a key,
/// if it has not expired: a scalar subquery over the player, key and expiry moment as
/// `[player, key, expired_at]` names them (parameters, or a batch's columns).
fn stored_key_column(column: &str, [player, key, expired_at]: [&str; 3]) -> String {
    format!(
        "(SELECT {column} FROM idempotency_keys WHERE player_id = {player} \
         AND idem_key = {key} AND created_at > {expired_at})"
    )
}

/// [`Sql::turn_read_keyed`] over the batch's turns `turns` (`place`, `player`, `module`,
/// `token`, `idem_key`, `key_expired_at`, after `FROM`), each row ending with its turn's place.
/// The rows beside the record (the module's data, the session, the key's reply: at most one
/// each, by primary key) are found one of two ways, each the cheaper where it is used:
/// - [`BatchLookups::Subqueries`] (PostgreSQL): a scalar subquery for each column, as the
///   single reads have. PostgreSQL keeps a prepared statement's generic plan for the life of
///   the connection, and a plan made while a table was small joins it by hash over a full
///   scan: measured, once 25k keys had been stored, every batched read scanned them all
///   (`read` fell from 17.6k to 6k req/s until the host reconnected). A subquery is planned
///   on its own and keeps its index scan.
/// - [`BatchLookups::Joins`] (MariaDB): `LEFT JOIN`s, which MariaDB plans again at every
///   execution, and which cost it less than subqueries run per row: in four alternating
///   `game-bench --quick --sections stores` runs, the CPU per request of MariaDB setups fell
///   by about a seventh on `read` and on `write` (91 → 77 µs, 226 → 194).
///
/// The record's columns are unqualified: no other table here has them.
fn turn_read_batch(turns: &str, lookups: BatchLookups) -> String {
    match lookups {
        BatchLookups::Subqueries => format!(
            "{}, {}, {}, r.place FROM {turns} JOIN players p ON p.player_id = r.player",
            turn_read_columns(["r.player", "r.module", "r.token", "r.player"]),
            stored_key_column(
                "fingerprint",
                ["r.player", "r.idem_key", "r.key_expired_at"]
            ),
            stored_key_column("reply", ["r.player", "r.idem_key", "r.key_expired_at"]),
        ),
        BatchLookups::Joins => format!(
            "SELECT {PLAYER_COLUMNS}, version, m.data, s.expires_at, k.fingerprint, k.reply, \
             r.place FROM {turns} \
             JOIN players p ON p.player_id = r.player \
             LEFT JOIN module_data m ON m.player_id = r.player AND m.module = r.module \
             LEFT JOIN sessions s ON s.token_hash = r.token AND s.player_id = r.player \
             LEFT JOIN idempotency_keys k ON k.player_id = r.player \
             AND k.idem_key = r.idem_key AND k.created_at > r.key_expired_at"
        ),
    }
}

/// How a batched read finds the rows beside the record ([`turn_read_batch`]).
#[derive(Clone, Copy)]
enum BatchLookups {
    Subqueries,
    Joins,
}

impl Sql {
    /// The columns of [`Sql::turn_read`]; a keyed read has two more (the key's fingerprint
    /// and reply).
    pub const TURN_READ_COLUMNS: usize = 8;
    /// The column of a batched read's place in its batch: after a keyed read's columns.
    pub const TURN_READ_BATCH_PLACE: usize = Sql::TURN_READ_COLUMNS + 2;

    pub fn postgres() -> Sql {
        Sql {
            insert_player: format!("{INSERT_PLAYER} ON CONFLICT (account) DO NOTHING"),
            upsert_module_data: "INSERT INTO module_data (player_id, module, data) VALUES ($1, $2, $3) ON CONFLICT (player_id, module) DO UPDATE SET data = excluded.data".into(),
            insert_audit: format!("{INSERT_AUDIT} RETURNING id"),
            // A data-modifying CTE: the module's row is written only if the record's was.
            // Numbered to bind as MariaDB's statement does.
            turn_write_with_data: format!(
                "WITH bumped AS ({BUMP_WITH_DATA_POSTGRES}) {DATA_AFTER_BUMP_POSTGRES}"
            ),
            turn_write_keyed: format!(
                "WITH bumped AS ({TURN_WRITE} RETURNING player_id) \
                 INSERT INTO idempotency_keys ({KEY_COLUMNS}) SELECT player_id, $12, $13, $14, $15 FROM bumped \
                 {KEY_CONFLICT_POSTGRES}"
            ),
            // Two data-modifying CTEs off one `bumped`: all three rows, or none.
            turn_write_with_data_keyed: format!(
                "WITH bumped AS ({BUMP_WITH_DATA_POSTGRES}), data AS ({DATA_AFTER_BUMP_POSTGRES}) \
                 INSERT INTO idempotency_keys ({KEY_COLUMNS}) SELECT player_id, $14, $15, $16, $17 FROM bumped \
                 {KEY_CONFLICT_POSTGRES}"
            ),
            insert_key: format!(
                "INSERT INTO idempotency_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5) {KEY_CONFLICT_POSTGRES}"
            ),
            // PostgreSQL's DELETE has no LIMIT: a batch by the rows' physical ids.
            delete_expired_keys: "DELETE FROM idempotency_keys WHERE ctid IN \
                 (SELECT ctid FROM idempotency_keys WHERE created_at <= $1 LIMIT $2)"
                .into(),
            turn_read_batch: turn_read_batch(
                "json_to_recordset($1::json) AS r(place bigint, player text, module text, \
                 token text, idem_key text, key_expired_at bigint)",
                BatchLookups::Subqueries,
            ),
            ..Sql::common()
        }
    }

    pub fn mysql() -> Sql {
        let common = Sql::common();
        let key = MYSQL_KEY;
        Sql {
            turn_read_batch: turn_read_batch(&format!(
                "JSON_TABLE(?, '$[*]' COLUMNS (place BIGINT PATH '$.place', \
                 player {key} PATH '$.player', module {key} PATH '$.module', \
                 token {key} PATH '$.token', \
                 idem_key {MYSQL_IDEM_KEY} PATH '$.idem_key', \
                 key_expired_at BIGINT PATH '$.key_expired_at')) AS r"
            ), BatchLookups::Joins),
            // `account = account` changes nothing: the row stays as it was.
            insert_player: format!("{INSERT_PLAYER} ON DUPLICATE KEY UPDATE account = account"),
            upsert_module_data: "INSERT INTO module_data (player_id, module, data) VALUES ($1, $2, $3) ON DUPLICATE KEY UPDATE data = VALUES(data)".into(),
            insert_audit: INSERT_AUDIT.into(),
            // MariaDB has no data-modifying CTE; a multi-table UPDATE writes both rows at
            // once (0 rows when the module's row is missing: the turn knows it is).
            turn_write_with_data: "UPDATE players p JOIN module_data m ON m.player_id = p.player_id \
                 SET p.name = $1, p.head_img = $2, p.gold = $3, p.diamond = $4, p.items = $5, p.updated_at = $6, p.version = p.version + 1, m.data = $7 \
                 WHERE p.player_id = $8 AND m.module = $9 AND p.version = $10 \
                 AND EXISTS (SELECT 1 FROM sessions s WHERE s.token_hash = $11 AND s.player_id = $12 AND s.expires_at > $13)"
                .into(),
            insert_key: format!(
                "INSERT INTO idempotency_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5) {KEY_CONFLICT_MYSQL}"
            ),
            delete_expired_keys: "DELETE FROM idempotency_keys WHERE created_at <= $1 LIMIT $2"
                .into(),
            ..common
        }
        .with_question_marks()
    }

    fn common() -> Sql {
        Sql {
            insert_player: String::new(),
            player_by_account: format!(
                "SELECT player_id, {PLAYER_COLUMNS} FROM players WHERE account = $1"
            ),
            insert_session: "INSERT INTO sessions (token_hash, player_id, expires_at) VALUES ($1, $2, $3)".into(),
            session: "SELECT player_id, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2".into(),
            delete_session: "DELETE FROM sessions WHERE token_hash = $1".into(),
            count_sessions: "SELECT COUNT(*) FROM sessions WHERE expires_at > $1".into(),
            lock_player: format!(
                "SELECT {PLAYER_COLUMNS} FROM players WHERE player_id = $1 FOR UPDATE"
            ),
            turn_read_batch: String::new(),
            turn_read: format!(
                "{} FROM players WHERE player_id = $5",
                turn_read_columns(["$1", "$2", "$3", "$4"])
            ),
            turn_read_keyed: format!(
                "{}, {}, {} FROM players WHERE player_id = $11",
                turn_read_columns(["$1", "$2", "$3", "$4"]),
                stored_key_column("fingerprint", ["$5", "$6", "$7"]),
                stored_key_column("reply", ["$8", "$9", "$10"]),
            ),
            turn_write: TURN_WRITE.into(),
            turn_write_with_data: String::new(),
            upsert_module_data: String::new(),
            turn_write_keyed: String::new(),
            turn_write_with_data_keyed: String::new(),
            insert_key: String::new(),
            delete_expired_keys: String::new(),
            account_of: "SELECT account, created_at, updated_at FROM players WHERE player_id = $1".into(),
            player: format!("SELECT {PLAYER_COLUMNS} FROM players WHERE player_id = $1"),
            modules_of: "SELECT module, data FROM module_data WHERE player_id = $1 ORDER BY module".into(),
            // Bumps the version too: a turn that read the record before the grant must not
            // write over it.
            update_balances: "UPDATE players SET gold = $1, diamond = $2, items = $3, updated_at = $4, version = version + 1 WHERE player_id = $5".into(),
            delete_sessions_of: "DELETE FROM sessions WHERE player_id = $1".into(),
            insert_audit: String::new(),
            audit_of_player: format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE player_id = $1 ORDER BY id DESC LIMIT $2"
            ),
            audit_of_all: format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY id DESC LIMIT $1"),
            module_data_page: "SELECT player_id, data FROM module_data WHERE module = $1 AND player_id > $2 ORDER BY player_id LIMIT $3".into(),
            count_module_data: "SELECT COUNT(*) FROM module_data WHERE module = $1".into(),
            replace_module_data: "UPDATE module_data SET data = $1 WHERE player_id = $2 AND module = $3 AND data = $4".into(),
            ping: "SELECT 1".into(),
        }
    }

    /// The same statements with MariaDB's placeholders.
    fn with_question_marks(self) -> Sql {
        let q = |text: String| question_marks(&text);
        Sql {
            insert_player: q(self.insert_player),
            player_by_account: q(self.player_by_account),
            insert_session: q(self.insert_session),
            session: q(self.session),
            delete_session: q(self.delete_session),
            count_sessions: q(self.count_sessions),
            lock_player: q(self.lock_player),
            turn_read: q(self.turn_read),
            // Written with MariaDB's placeholder: its JSON paths have `$` of their own.
            turn_read_batch: self.turn_read_batch,
            turn_read_keyed: q(self.turn_read_keyed),
            turn_write: q(self.turn_write),
            turn_write_with_data: q(self.turn_write_with_data),
            upsert_module_data: q(self.upsert_module_data),
            // PostgreSQL's only: empty here.
            turn_write_keyed: self.turn_write_keyed,
            turn_write_with_data_keyed: self.turn_write_with_data_keyed,
            insert_key: q(self.insert_key),
            delete_expired_keys: q(self.delete_expired_keys),
            account_of: q(self.account_of),
            player: q(self.player),
            modules_of: q(self.modules_of),
            update_balances: q(self.update_balances),
            delete_sessions_of: q(self.delete_sessions_of),
            insert_audit: q(self.insert_audit),
            audit_of_player: q(self.audit_of_player),
            audit_of_all: q(self.audit_of_all),
            module_data_page: q(self.module_data_page),
            count_module_data: q(self.count_module_data),
            replace_module_data: q(self.replace_module_data),
            ping: self.ping,
        }
    }
}

/// `$1`, `$2`, … replaced by `?`; they must appear in order, each once, which is checked.
pub(super) fn question_marks(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut expected = 1;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut number = String::new();
        while let Some(digit) = chars.next_if(char::is_ascii_digit) {
            number.push(digit);
        }
        assert_eq!(
            number.parse::<usize>().ok(),
            Some(expected),
            "parameters must appear in order, each once: {sql}"
        );
        expected += 1;
        out.push('?');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_has_its_parameters_in_order() {
        // Building the MariaDB set checks every statement (the rewrite panics otherwise).
        let mysql = Sql::mysql();
        assert!(!mysql.turn_read.contains('$'));
        assert_eq!(mysql.turn_read.matches('?').count(), 5);
        // A batch of reads binds one value, the turns.
        assert_eq!(mysql.turn_read_batch.matches('?').count(), 1);
        assert!(Sql::postgres().turn_read_batch.contains("$1::json"));
        // The two dialects of a turn's write bind the same values in the same order.
        assert_eq!(mysql.turn_write_with_data.matches('?').count(), 13);
        let postgres = Sql::postgres();
        assert!((1..=13).all(|n| postgres.turn_write_with_data.contains(&format!("${n}"))));
        assert!(Sql::postgres().insert_audit.ends_with("RETURNING id"));
        // A keyed read binds two more values after the module's and the session's.
        assert_eq!(mysql.turn_read_keyed.matches('?').count(), 11);
        assert_eq!(mysql.insert_key.matches('?').count(), 5);
        // The keyed writes bind the unkeyed ones' values first, then the key's four.
        assert!((1..=15).all(|n| postgres.turn_write_keyed.contains(&format!("${n}"))));
        assert!((1..=17).all(|n| postgres
            .turn_write_with_data_keyed
            .contains(&format!("${n}"))));
    }

    #[test]
    #[should_panic(expected = "in order")]
    fn a_parameter_out_of_order_is_caught() {
        question_marks("SELECT $2, $1");
    }
}
