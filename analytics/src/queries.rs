//! Named dashboard queries: each chart is a SQL query in a config file
//! (`dashboards/queries.toml`), so a country adds a chart without code.
//!
//! Filters reach the SQL as bound parameters, never as text: `$from` and `$to` (dates,
//! inclusive), `$tenant`, `$state`, `$vaccine` (text; the empty string means "all"). A query uses
//! the ones it needs, e.g. `WHERE day BETWEEN $from AND $to AND ($state = '' OR state = $state)`.

use std::path::Path;

use datafusion::common::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::{AnalyticsError, Limits, QueryResult, SqlEngine};

/// One chart's query.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamedQuery {
    /// Stable id (`[a-z0-9_]+`), used in URLs.
    pub name: String,
    /// Chart title.
    pub title: String,
    /// `bar`, `line`, `pie` or `number` (a single value).
    pub chart: String,
    /// The SQL; the first column is the category (or x axis), the others are series.
    pub sql: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardQueries {
    #[serde(rename = "query")]
    pub queries: Vec<NamedQuery>,
}

/// The dashboard's filters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filters {
    /// `YYYY-MM-DD`; default 1970-01-01.
    pub from: Option<String>,
    /// `YYYY-MM-DD`; default 9999-12-31.
    pub to: Option<String>,
    pub tenant: Option<String>,
    pub state: Option<String>,
    pub vaccine: Option<String>,
}

const CHARTS: [&str; 4] = ["bar", "line", "pie", "number"];

impl DashboardQueries {
    pub fn load(path: &Path) -> Result<Self, AnalyticsError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            AnalyticsError::Config(format!("{}: cannot read ({e})", path.display()))
        })?;
        Self::parse(&text).map_err(|e| AnalyticsError::Config(format!("{}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let q: DashboardQueries = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut seen = std::collections::BTreeSet::new();
        for n in &q.queries {
            if n.name.is_empty()
                || !n
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(format!("query name {:?}: use [a-z0-9_]+", n.name));
            }
            if !seen.insert(n.name.as_str()) {
                return Err(format!("query name {:?} appears twice", n.name));
            }
            if !CHARTS.contains(&n.chart.as_str()) {
                return Err(format!(
                    "query {:?}: chart {:?} is not one of {CHARTS:?}",
                    n.name, n.chart
                ));
            }
        }
        Ok(q)
    }

    pub fn get(&self, name: &str) -> Option<&NamedQuery> {
        self.queries.iter().find(|q| q.name == name)
    }
}

fn date(text: Option<&str>, default: &str) -> Result<ScalarValue, AnalyticsError> {
    let t = text.filter(|t| !t.is_empty()).unwrap_or(default);
    let d = chrono_free_date(t)
        .ok_or_else(|| AnalyticsError::Refused(format!("date {t:?} is not YYYY-MM-DD")))?;
    Ok(ScalarValue::Date32(Some(d)))
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn chrono_free_date(t: &str) -> Option<i32> {
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let (y, m, d) = (num(&t[0..4])?, num(&t[5..7])?, num(&t[8..10])?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i32::try_from(era * 146_097 + doe - 719_468).ok()
}

impl SqlEngine {
    /// Runs a dashboard query with the filters bound as parameters.
    pub async fn run_named(
        &self,
        query: &NamedQuery,
        filters: &Filters,
        limits: &Limits,
    ) -> Result<QueryResult, AnalyticsError> {
        let text = |v: &Option<String>| ScalarValue::Utf8(Some(v.clone().unwrap_or_default()));
        let params: Vec<(&str, ScalarValue)> = vec![
            ("from", date(filters.from.as_deref(), "1970-01-01")?),
            ("to", date(filters.to.as_deref(), "9999-12-31")?),
            ("tenant", text(&filters.tenant)),
            ("state", text(&filters.state)),
            ("vaccine", text(&filters.vaccine)),
        ];
        self.run(&query.sql, Some(params), limits).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_to_days() {
        assert_eq!(chrono_free_date("1970-01-01"), Some(0));
        assert_eq!(chrono_free_date("2021-09-17"), Some(18887));
        assert_eq!(chrono_free_date("2000-02-29"), Some(11016));
        assert_eq!(chrono_free_date("2021-13-01"), None);
        assert_eq!(chrono_free_date("2021-02-29"), None);
        assert_eq!(chrono_free_date("2021-04-31"), None);
        assert_eq!(chrono_free_date("21-09-17"), None);
    }

    #[test]
    fn query_file_rules() {
        let ok = "[[query]]\nname='by_day'\ntitle='By day'\nchart='line'\nsql='SELECT 1'\n";
        assert_eq!(DashboardQueries::parse(ok).unwrap().queries.len(), 1);
        assert!(DashboardQueries::parse(&ok.replace("line", "donut")).is_err());
        assert!(DashboardQueries::parse(&ok.replace("by_day", "By Day")).is_err());
        assert!(DashboardQueries::parse(&format!("{ok}{ok}")).is_err());
    }
}
