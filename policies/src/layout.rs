//! Notes on a valid policy that cost, not safety, calls for: where the
//! policy names an entity column that repeats (records: several rows a
//! person) and the dataset's rows are not stored keyed by it, every query
//! under the policy sorts each group's people, several times the query's
//! own time. Registering the file with `--entity` stores them keyed. An
//! admin sees this when checking or applying the policy, not months later
//! in slow jobs.

use crate::policy::{Diagnostic, Policy, line_col};
use std::collections::BTreeMap;

/// How a dataset's rows are stored, as far as a policy's cost depends on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityLayout {
    /// Columns registration proved to hold every value once (one row an entity).
    pub unique: Vec<String>,
    /// The column whose entity key is stored beside the rows, in its order.
    pub keyed_by: Option<String>,
}

/// The notes on `policy` (whose text is `text`, named `file`): one per
/// dataset whose entity column repeats and whose rows are not keyed by it.
/// Datasets missing from `layouts` get none.
pub fn layout_notes(
    policy: &Policy,
    text: &str,
    file: &str,
    layouts: &BTreeMap<String, EntityLayout>,
) -> Vec<Diagnostic> {
    let mut notes = Vec::new();
    for (name, d) in &policy.datasets {
        let (dataset, entity) = (name.get_ref(), d.entity.get_ref());
        let Some(layout) = layouts.get(dataset) else {
            continue;
        };
        if layout.unique.contains(entity) || layout.keyed_by.as_ref() == Some(entity) {
            continue;
        }
        let (line, column) = line_col(text, d.entity.span().start);
        notes.push(Diagnostic {
            file: file.to_string(),
            line,
            column,
            message: format!(
                "note: `{dataset}` has several rows per `{entity}` and is not stored keyed by it, so every query \
                 under this policy sorts each group's people, several times the query's own time; registered with \
                 `inland dataset add NAME FILE --entity {entity}`, its rows are stored keyed and such queries take \
                 about a third as long"
            ),
        });
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[datasets.services]\ngrade = \"general\"\nentity = \"resident_id\"\ncolumns = {}\n\n\
                        [datasets.residents]\ngrade = \"general\"\nentity = \"resident_id\"\ncolumns = {}\n";

    fn policy() -> Policy {
        let columns = vec!["resident_id".to_string(), "district".to_string()];
        let catalog = [("services", &columns), ("residents", &columns)]
            .into_iter()
            .map(|(n, c)| (n.to_string(), c.clone()))
            .collect();
        Policy::load(TEXT, "domain.toml", &catalog).unwrap()
    }

    fn layouts(services: EntityLayout) -> BTreeMap<String, EntityLayout> {
        let one_row_each = EntityLayout {
            unique: vec!["resident_id".into()],
            keyed_by: None,
        };
        [
            ("services".to_string(), services),
            ("residents".to_string(), one_row_each),
        ]
        .into()
    }

    #[test]
    fn records_not_keyed_by_their_entity_get_a_note_where_the_entity_is_named() {
        let notes = layout_notes(&policy(), TEXT, "domain.toml", &layouts(EntityLayout::default()));
        assert_eq!(notes.len(), 1, "{notes:?}");
        let shown = notes[0].to_string();
        assert!(
            shown.starts_with("domain.toml:3:10: note: `services` has several rows per `resident_id`"),
            "{shown}"
        );
        assert!(shown.contains("--entity resident_id"), "{shown}");
    }

    #[test]
    fn records_keyed_by_their_entity_and_one_row_per_entity_get_none() {
        let keyed = EntityLayout {
            unique: Vec::new(),
            keyed_by: Some("resident_id".into()),
        };
        assert!(layout_notes(&policy(), TEXT, "domain.toml", &layouts(keyed)).is_empty());
        // Keyed by another column is not keyed by the entity.
        let other = EntityLayout {
            unique: Vec::new(),
            keyed_by: Some("district".into()),
        };
        assert_eq!(layout_notes(&policy(), TEXT, "domain.toml", &layouts(other)).len(), 1);
        // A dataset the catalog does not describe gets no note.
        assert!(layout_notes(&policy(), TEXT, "domain.toml", &BTreeMap::new()).is_empty());
    }
}
