//! The SQL the metadata store speaks, the same for its two databases: SQLite (the single
//! binary's `meta.sqlite`) and PostgreSQL (a cluster's `--metastore`).
//!
//! Each store call is one closure over a [`Tx`]; the closure runs on the blocking pool and
//! does not know which database it talks to. Statements are written in the subset both
//! understand — `?N` placeholders (turned into `$N` for PostgreSQL), `ON CONFLICT`,
//! `RETURNING`, `CASE` instead of SQLite's two-argument `MAX`/`MIN`, `CAST(? AS BIGINT)` where
//! PostgreSQL cannot tell a parameter's type — and values cross as [`Value`]s: integers,
//! floats, text and NULL, which is all the metadata holds.

use super::postgres::PgTx;

/// One value passed to or read from a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// Why a statement failed, whichever database ran it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A UNIQUE, CHECK or foreign-key constraint refused the change.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// The database could not be reached, or no connection came free in time.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A column held a value of another type than the code reads.
    #[error("column {column}: {problem}")]
    Column { column: usize, problem: String },
    /// A lookup that needs one row found none.
    #[error("no row")]
    NoRow,
    #[error("{0}")]
    Other(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                DbError::Constraint(e.to_string())
            }
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                DbError::Unavailable(e.to_string())
            }
            rusqlite::Error::QueryReturnedNoRows => DbError::NoRow,
            other => DbError::Other(other.to_string()),
        }
    }
}

/// Something a statement takes as a parameter.
pub trait Param {
    /// The value bound.
    fn value(&self) -> Value;
}

impl Param for i64 {
    fn value(&self) -> Value {
        Value::Int(*self)
    }
}

impl Param for u32 {
    fn value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl Param for bool {
    fn value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl Param for f64 {
    fn value(&self) -> Value {
        Value::Real(*self)
    }
}

impl Param for str {
    fn value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl Param for String {
    fn value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value {
        (**self).value()
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value {
        self.as_ref().map_or(Value::Null, Param::value)
    }
}

/// The parameters of one statement: `params![a, b, c]`.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        &[$(&$p as &dyn $crate::meta::sql::Param),*] as &[&dyn $crate::meta::sql::Param]
    };
}
pub(crate) use params;

/// Something a column can be read as.
pub trait FromValue: Sized {
    /// `None` when the value has another type.
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }
}

impl FromValue for u32 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(v) => u32::try_from(*v).ok(),
            _ => None,
        }
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(v) => Some(*v != 0),
            _ => None,
        }
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Real(v) => Some(*v),
            // SQLite keeps a REAL that holds a whole number as written; read it back as a float.
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug)]
pub struct Row(pub(super) Vec<Value>);

impl Row {
    /// Column `column` (from 0) as a `T`.
    pub fn get<T: FromValue>(&self, column: usize) -> Result<T, DbError> {
        let value = self.0.get(column).ok_or_else(|| DbError::Column {
            column,
            problem: format!("the row has only {} columns", self.0.len()),
        })?;
        T::from_value(value).ok_or_else(|| DbError::Column {
            column,
            problem: format!("holds {value:?}, not a {}", std::any::type_name::<T>()),
        })
    }
}

/// One open transaction of the metadata store, in SQLite or in PostgreSQL.
pub enum Tx<'a> {
    Sqlite(&'a rusqlite::Transaction<'a>),
    Postgres(PgTx<'a>),
}

impl Tx<'_> {
    /// Runs a statement that returns no rows; how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize, DbError> {
        let values = values(params);
        match self {
            Tx::Sqlite(tx) => {
                let mut stmt = tx.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(values.iter().map(to_sqlite)))?)
            }
            Tx::Postgres(tx) => tx.execute(&postgres_sql(sql), &values),
        }
    }

    /// Runs an `INSERT` and returns the `id` of the row it added.
    pub fn insert(&self, sql: &str, params: &[&dyn Param]) -> Result<i64, DbError> {
        self.query_row(&format!("{sql} RETURNING id"), params, |r| r.get(0))
    }

    /// Every row of a query, each through `map`.
    pub fn query_map<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        self.rows(sql, params)?.iter().map(map).collect()
    }

    fn rows(&self, sql: &str, params: &[&dyn Param]) -> Result<Vec<Row>, DbError> {
        let values = values(params);
        match self {
            Tx::Sqlite(tx) => {
                let mut stmt = tx.prepare_cached(sql)?;
                let columns = stmt.column_count();
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(values.iter().map(to_sqlite)))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(Row((0..columns)
                        .map(|i| row.get_ref(i).map(from_sqlite))
                        .collect::<Result<_, _>>()?));
                }
                Ok(out)
            }
            Tx::Postgres(tx) => tx.query(&postgres_sql(sql), &values),
        }
    }

    /// The one row a query finds, or `None`.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let mut rows = self.rows(sql, params)?;
        if rows.len() > 1 {
            return Err(DbError::Other(format!(
                "expected at most one row, found {}",
                rows.len()
            )));
        }
        rows.pop().map(|r| map(&r)).transpose()
    }

    /// The one row a query finds; [`DbError::NoRow`] when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.query_opt(sql, params, map)?.ok_or(DbError::NoRow)
    }
}

fn values(params: &[&dyn Param]) -> Vec<Value> {
    params.iter().map(|p| p.value()).collect()
}

fn to_sqlite(value: &Value) -> rusqlite::types::Value {
    match value {
        Value::Null => rusqlite::types::Value::Null,
        Value::Int(v) => rusqlite::types::Value::Integer(*v),
        Value::Real(v) => rusqlite::types::Value::Real(*v),
        Value::Text(v) => rusqlite::types::Value::Text(v.clone()),
    }
}

fn from_sqlite(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(v) => Value::Int(v),
        ValueRef::Real(v) => Value::Real(v),
        ValueRef::Text(v) | ValueRef::Blob(v) => Value::Text(String::from_utf8_lossy(v).into()),
    }
}

/// `sql` with SQLite's `?N` placeholders written as PostgreSQL's `$N` (outside quoted text).
pub fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '?' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_dollars_outside_quotes() {
        assert_eq!(
            postgres_sql("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12"
        );
    }

    #[test]
    fn rows_read_as_the_asked_type_or_say_why_not() {
        let row = Row(vec![Value::Int(3), Value::Null, Value::Text("x".into())]);
        assert_eq!(row.get::<i64>(0).unwrap(), 3);
        assert!(row.get::<bool>(0).unwrap());
        assert_eq!(row.get::<Option<i64>>(1).unwrap(), None);
        assert_eq!(row.get::<String>(2).unwrap(), "x");
        assert!(matches!(
            row.get::<i64>(2),
            Err(DbError::Column { column: 2, .. })
        ));
        assert!(matches!(
            row.get::<i64>(3),
            Err(DbError::Column { column: 3, .. })
        ));
    }
}
