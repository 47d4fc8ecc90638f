//! Where a key sits in the user's pipeline file, so every error names a real line, and the
//! `--set key=value` overrides applied to the parsed document (never to re-serialized text).

use toml::de::{DeTable, DeValue};

/// The 1-based line of `key` (`nodes.validate.max_doses`, `edges[2].to`) in `text`: the key
/// itself where it exists, else the closest table on its path that does.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = doc.get_ref();
    let mut best: Option<usize> = None;
    for segment in key.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let Some((k, v)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name) else {
            break;
        };
        best = Some(k.span().start);
        let value = match (v.get_ref(), index) {
            (DeValue::Array(items), Some(i)) => match items.get(i) {
                Some(item) => {
                    best = Some(item.span().start);
                    item.get_ref()
                }
                None => break,
            },
            (other, _) => other,
        };
        match value {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    best.map(|offset| line_at(text, offset))
}

/// 1-based line number of a byte offset.
pub fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Applies `key.path=value` overrides (value parsed as TOML, else taken as a string).
pub fn apply_overrides(doc: &mut toml::Table, sets: &[String]) -> Result<(), String> {
    for set in sets {
        let (key, raw) = set.split_once('=').ok_or_else(|| {
            format!("--set {set:?}: expected key.path=value, e.g. --set storage.url=./out")
        })?;
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
        let parts: Vec<&str> = key.split('.').collect();
        let (last, path) = parts
            .split_last()
            .ok_or_else(|| format!("--set {set:?}: empty key"))?;
        let mut table = &mut *doc;
        for p in path {
            table = table
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
                .ok_or_else(|| format!("--set {set:?}: {p} is not a table"))?;
        }
        table.insert((*last).to_owned(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# comment\n[pipeline]\nbatch_size = 8\n\n[nodes.validate]\nkind = \"validate\"\nmax_doses = 0\n\n[[edges]]\nfrom = \"a\"\nto = \"b\"\n\n[[edges]]\nfrom = \"b\"\nto = \"c\"\n";

    #[test]
    fn finds_keys_tables_and_array_elements() {
        assert_eq!(line_of_key(TEXT, "pipeline.batch_size"), Some(3));
        assert_eq!(line_of_key(TEXT, "nodes.validate.max_doses"), Some(7));
        assert_eq!(line_of_key(TEXT, "nodes.validate"), Some(5));
        // A key that is not in the file: the closest enclosing table.
        assert_eq!(line_of_key(TEXT, "nodes.validate.catalogue"), Some(5));
        assert_eq!(line_of_key(TEXT, "edges[1].to"), Some(15));
        assert_eq!(line_of_key(TEXT, "nowhere"), None);
    }

    #[test]
    fn overrides_edit_the_parsed_document() {
        let mut doc: toml::Table = toml::from_str(TEXT).unwrap();
        apply_overrides(
            &mut doc,
            &[
                "pipeline.batch_size=16".into(),
                "storage.url=s3://b/x".into(),
            ],
        )
        .unwrap();
        assert_eq!(doc["pipeline"]["batch_size"].as_integer(), Some(16));
        assert_eq!(doc["storage"]["url"].as_str(), Some("s3://b/x"));
        assert!(apply_overrides(&mut doc, &["no-equals".into()]).is_err());
    }
}
