//! Names of the columns the host adds to a plan and never shows a job: the
//! entity behind each row, the entities behind each group, and the
//! contributions behind each sum or mean.

/// The hidden column of a policy table holding the pseudonymous entity of each row.
pub(crate) const ENTITY: &str = "__inland_entity";
/// The column the rewrite adds: distinct entities behind each group.
pub(crate) const GROUP_SIZE: &str = "__inland_group_entities";

/// The column the rewrite adds: a sketch of the entities behind each group,
/// which the gate compares with every released cell of the domain.
pub(crate) const SKETCH: &str = "__inland_group_sketch";

/// Prefix of the hidden contribution columns the rewrite adds for sums and means.
pub(crate) const CONTRIB: &str = "__inland_contrib_";

/// The column the rewrite adds where entities have several rows: one
/// measure's contributions and the sketch, computed together (`measured`).
pub(crate) const MEASURED: &str = "__inland_measured";

/// Whether a column name is the host's: every hidden column starts so, and a
/// job's plan may not read or make one (a job's alias of that name would
/// collide with the rewrite's columns).
pub(crate) fn reserved(name: &str) -> bool {
    name.get(..9).is_some_and(|p| p.eq_ignore_ascii_case("__inland_"))
}
