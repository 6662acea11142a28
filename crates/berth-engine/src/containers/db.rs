//! The container database: `<data-root>/containers.db` (SQLite, WAL). One row per container
//! holding its record as JSON; every state change is one transaction.

use super::Record;
use crate::images::{Error, Result};
use rusqlite::{params, Connection};
use std::path::Path;

pub struct Db {
    conn: Connection,
}

fn db_err(what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::internal(format!("container database: {what}: {e}"))
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path).map_err(db_err("open"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS containers (
                 id TEXT PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE,
                 record TEXT NOT NULL
             );",
        )
        .map_err(db_err("schema"))?;
        Ok(Db { conn })
    }

    pub fn all(&self) -> Result<Vec<Record>> {
        let mut st = self
            .conn
            .prepare("SELECT id, record FROM containers")
            .map_err(db_err("list"))?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(db_err("list"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, text) = row.map_err(db_err("list"))?;
            match serde_json::from_str::<Record>(&text) {
                Ok(r) => out.push(r),
                Err(e) => tracing::error!(container = %id, "unreadable container record: {e}"),
            }
        }
        Ok(out)
    }

    /// Insert; a taken name is a conflict.
    pub fn insert(&self, r: &Record) -> Result<()> {
        let text = serde_json::to_string(r)
            .map_err(|e| Error::internal(format!("encoding container {}: {e}", r.id)))?;
        match self.conn.execute(
            "INSERT INTO containers (id, name, record) VALUES (?1, ?2, ?3)",
            params![r.id, r.name, text],
        ) {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::conflict(format!(
                    "Conflict. The container name \"/{}\" is already in use. You have to remove \
                     (or rename) that container to be able to reuse that name.",
                    r.name
                )))
            }
            Err(e) => Err(db_err("insert")(e)),
        }
    }

    pub fn update(&self, r: &Record) -> Result<()> {
        let text = serde_json::to_string(r)
            .map_err(|e| Error::internal(format!("encoding container {}: {e}", r.id)))?;
        self.conn
            .execute(
                "UPDATE containers SET name = ?2, record = ?3 WHERE id = ?1",
                params![r.id, r.name, text],
            )
            .map_err(db_err("update"))?;
        Ok(())
    }

    pub fn delete(&self, id: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM containers WHERE id = ?1", params![id])
            .map_err(db_err("delete"))?;
        Ok(())
    }
}
