//! Links, base snapshots and the audit trail on SQLite.

use super::SqliteStore;
use super::batch::Write;
use crate::audit::{AuditEntry, AuditKind, NewAuditEntry};
use crate::codec::{
    crm_columns, from_micros, limit, opt_from_micros, parse_crm, parse_engagement, parse_json,
    parse_key, parse_object, parse_referral, to_micros,
};
use crate::error::{Result, StoreError};
use crate::link::{LinkId, SyncLink};
use crate::store::LinkStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use refsync_core::{CrmRecordRef, EngagementId, Etag, ReferralId, SyncKey};
use sqlx::query::QueryScalar;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Row, Sqlite, SqliteConnection};

const LINK_COLUMNS: &str = "id, referral_id, engagement_id, crm_entity, crm_id, base, \
    referral_etag, referral_updated_at, crm_modified_at, created_at, updated_at, version";

fn link_from_row(row: &SqliteRow) -> Result<SyncLink> {
    Ok(SyncLink {
        id: Some(LinkId(row.try_get("id")?)),
        referral_id: parse_referral(row.try_get("referral_id")?)?,
        engagement_id: parse_engagement(row.try_get("engagement_id")?)?,
        crm_record: parse_crm(row.try_get("crm_entity")?, row.try_get("crm_id")?)?,
        base: parse_object(row.try_get("base")?)?,
        referral_etag: row
            .try_get::<Option<String>, _>("referral_etag")?
            .map(Etag::new),
        referral_updated_at: opt_from_micros(row.try_get("referral_updated_at")?)?,
        crm_modified_at: opt_from_micros(row.try_get("crm_modified_at")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
        updated_at: from_micros(row.try_get("updated_at")?)?,
        version: row.try_get("version")?,
    })
}

/// Maps a unique violation on a link's referral or CRM record to `LinkKeyTaken`.
fn link_write_error(e: sqlx::Error) -> StoreError {
    if StoreError::is_unique_violation(&e) {
        StoreError::LinkKeyTaken
    } else {
        StoreError::Backend(e)
    }
}

async fn insert_audit(conn: &mut SqliteConnection, entries: &[NewAuditEntry]) -> Result<()> {
    for e in entries {
        let (entity, id) = crm_columns(e.crm_record.as_ref());
        sqlx::query(
            "INSERT INTO audit_log (at, sync_key, referral_id, crm_entity, crm_id, kind, summary, \
             detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(to_micros(e.at))
        .bind(e.key.to_string())
        .bind(e.referral_id.as_ref().map(|r| r.as_str()))
        .bind(entity)
        .bind(id)
        .bind(e.kind.as_str())
        .bind(&e.summary)
        .bind(e.detail.to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn audit_from_row(row: &SqliteRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        entry: NewAuditEntry {
            at: from_micros(row.try_get("at")?)?,
            key: parse_key(row.try_get("sync_key")?)?,
            referral_id: parse_referral(row.try_get("referral_id")?)?,
            crm_record: parse_crm(row.try_get("crm_entity")?, row.try_get("crm_id")?)?,
            kind: AuditKind::parse(row.try_get("kind")?),
            summary: row.try_get("summary")?,
            detail: parse_json(row.try_get("detail")?)?,
        },
    })
}

impl SqliteStore {
    async fn links_where(&self, condition: &str, bind: &[Option<&str>]) -> Result<Vec<SyncLink>> {
        let sql = format!("SELECT {LINK_COLUMNS} FROM sync_links WHERE {condition} ORDER BY id");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in bind {
            q = q.bind(b.map(str::to_owned));
        }
        let rows = q.fetch_all(&self.reader).await?;
        rows.iter().map(link_from_row).collect()
    }

    async fn audit_where(&self, condition: &str, value: String, n: u32) -> Result<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT id, at, sync_key, referral_id, crm_entity, crm_id, kind, summary, detail \
             FROM audit_log WHERE {condition} ORDER BY id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(limit(n))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(audit_from_row).collect()
    }
}

/// Binds `$1`–`$9`, the columns an insert and an update of a link both write:
/// the link's fields, its `base` as JSON text, and `now` as the time written.
fn bind_link_columns<'q, O>(
    query: QueryScalar<'q, Sqlite, O, SqliteArguments>,
    link: &'q SyncLink,
    base: &'q str,
    now: DateTime<Utc>,
) -> QueryScalar<'q, Sqlite, O, SqliteArguments> {
    let (entity, crm_id) = crm_columns(link.crm_record.as_ref());
    query
        .bind(link.referral_id.as_ref().map(|r| r.as_str()))
        .bind(link.engagement_id.as_ref().map(|e| e.as_str()))
        .bind(entity)
        .bind(crm_id)
        .bind(base)
        .bind(link.referral_etag.as_ref().map(|e| e.as_str()))
        .bind(link.referral_updated_at.map(to_micros))
        .bind(link.crm_modified_at.map(to_micros))
        .bind(to_micros(now))
}

/// Saves a link with its audit entries (see `LinkStore::save_link_with_audit`) on a
/// connection inside the caller's transaction.
pub(super) async fn save_link_in(
    conn: &mut SqliteConnection,
    link: &SyncLink,
    audit: &[NewAuditEntry],
    now: DateTime<Utc>,
) -> Result<SyncLink> {
    let base = serde_json::Value::Object(link.base.clone()).to_string();
    let mut saved = link.clone();
    match link.id {
        None => {
            let insert = sqlx::query_scalar(
                "INSERT INTO sync_links (referral_id, engagement_id, crm_entity, crm_id, base, \
                 referral_etag, referral_updated_at, crm_modified_at, created_at, updated_at, \
                 version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 1) RETURNING id",
            );
            let id: i64 = bind_link_columns(insert, link, &base, now)
                .fetch_one(&mut *conn)
                .await
                .map_err(link_write_error)?;
            saved.id = Some(LinkId(id));
            saved.created_at = now;
            saved.version = 1;
        }
        Some(id) => {
            // The version check and the write are one statement: no window for a
            // second writer between them.
            let update = sqlx::query_scalar(
                "UPDATE sync_links SET referral_id = $1, engagement_id = $2, crm_entity = $3, \
                 crm_id = $4, base = $5, referral_etag = $6, referral_updated_at = $7, \
                 crm_modified_at = $8, updated_at = $9, version = version + 1 \
                 WHERE id = $10 AND version = $11 RETURNING created_at",
            );
            let created: Option<i64> = bind_link_columns(update, link, &base, now)
                .bind(id.0)
                .bind(link.version)
                .fetch_optional(&mut *conn)
                .await
                .map_err(link_write_error)?;
            let created = created.ok_or(StoreError::VersionConflict {
                link: id.0,
                expected: link.version,
            })?;
            saved.created_at = from_micros(created)?;
            saved.version = link.version + 1;
        }
    }
    saved.updated_at = now;
    insert_audit(conn, audit).await?;
    Ok(saved)
}

#[async_trait]
impl LinkStore for SqliteStore {
    async fn save_link_with_audit(
        &self,
        link: &SyncLink,
        audit: &[NewAuditEntry],
        now: DateTime<Utc>,
    ) -> Result<SyncLink> {
        let (link, audit) = (Box::new(link.clone()), audit.to_vec());
        self.writes
            .submit(|answer| Write::SaveLink {
                link,
                audit,
                now,
                answer,
            })
            .await
    }

    async fn link(&self, id: LinkId) -> Result<Option<SyncLink>> {
        let sql = format!("SELECT {LINK_COLUMNS} FROM sync_links WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(link_from_row)
            .transpose()
    }

    async fn link_by_referral(&self, referral_id: &ReferralId) -> Result<Option<SyncLink>> {
        Ok(self
            .links_where("referral_id = $1", &[Some(referral_id.as_str())])
            .await?
            .pop())
    }

    async fn link_by_crm_record(&self, record: &CrmRecordRef) -> Result<Option<SyncLink>> {
        let (entity, id) = crm_columns(Some(record));
        Ok(self
            .links_where("crm_entity = $1 AND crm_id = $2", &[entity, id])
            .await?
            .pop())
    }

    async fn links_by_engagement(&self, engagement_id: &EngagementId) -> Result<Vec<SyncLink>> {
        self.links_where("engagement_id = $1", &[Some(engagement_id.as_str())])
            .await
    }

    async fn append_audit(&self, entries: &[NewAuditEntry]) -> Result<()> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        insert_audit(&mut tx, entries).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_for_referral(
        &self,
        referral_id: &ReferralId,
        n: u32,
    ) -> Result<Vec<AuditEntry>> {
        self.audit_where("referral_id = $1", referral_id.to_string(), n)
            .await
    }

    async fn audit_for_key(&self, key: &SyncKey, n: u32) -> Result<Vec<AuditEntry>> {
        self.audit_where("sync_key = $1", key.to_string(), n).await
    }
}
