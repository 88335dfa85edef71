//! What the engine is handed about each dataset: a value, not a catalog
//! lookup, so the query path can be tested and reused on its own.

use arrow::datatypes::Schema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A column of a registered dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// Arrow data type as Arrow prints it.
    pub data_type: String,
    /// Whether nulls occur or may occur.
    pub nullable: bool,
}

impl ColumnInfo {
    /// The columns of an Arrow schema, as the catalog and records show them.
    pub fn of(schema: &Schema) -> Vec<ColumnInfo> {
        schema
            .fields()
            .iter()
            .map(|f| ColumnInfo {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect()
    }
}

/// A dataset a job may read: its name as SQL sees it, its stored file, its
/// columns, and the columns registration proved unique and never null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSource {
    /// The table name a job's SQL uses.
    pub name: String,
    /// The stored Parquet file.
    pub path: PathBuf,
    /// The columns as stored (narrowed by [`crate::visible_columns`] for listings).
    pub columns: Vec<ColumnInfo>,
    /// Columns proven unique and never null: entity counts may count rows.
    pub unique_columns: Vec<String>,
    /// The entity key stored beside the rows (`dataset add --entity`), if any.
    pub entity_key: Option<crate::StoredEntityKey>,
}
