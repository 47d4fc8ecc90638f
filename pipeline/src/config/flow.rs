//! Follows the declared columns through the DAG: every node's needs must be met by what reaches
//! it, with the declared type. A miss names the node, the column and the component that adds it.

use std::collections::BTreeMap;

use super::{Registry, Role};
use crate::columns::{Column, ColumnType};
use crate::dead_letter::DEAD_LETTER_COLUMNS;
use crate::sink::SinkInput;

/// One node as the flow check sees it.
pub(crate) struct FlowNode<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub role: Role,
    pub input: SinkInput,
    pub needs: Vec<Column>,
    pub adds: Vec<Column>,
}

/// A column missing or mistyped at a node: (node, problem, fix).
pub(crate) type FlowError = (String, String, String);

type Columns = BTreeMap<&'static str, ColumnType>;

/// `order` lists nodes with every upstream first; `upstreams` gives each node's inputs.
pub(crate) fn check_flow(
    order: &[FlowNode<'_>],
    upstreams: impl Fn(&str) -> Vec<String>,
    registry: &Registry,
) -> Result<(), FlowError> {
    let dead_letters: Columns = DEAD_LETTER_COLUMNS.iter().map(|c| (c.name, c.ty)).collect();
    let mut outputs: BTreeMap<&str, Columns> = BTreeMap::new();
    for node in order {
        let available: Columns = match (node.role, node.input) {
            (Role::Source, _) => Columns::new(),
            (Role::Sink, SinkInput::DeadLetters) => dead_letters.clone(),
            (Role::Sink, SinkInput::CommitsOnly) => Columns::new(),
            _ => intersect(
                upstreams(node.name)
                    .iter()
                    .filter_map(|u| outputs.get(u.as_str())),
            ),
        };
        for need in &node.needs {
            match available.get(need.name) {
                Some(ty) if *ty == need.ty => {}
                Some(ty) => {
                    return Err((
                        node.name.to_owned(),
                        format!(
                            "`{}` ({}) needs {need}, but its input carries `{}` as {}",
                            node.name,
                            node.kind,
                            need.name,
                            ty.name()
                        ),
                        "make the producing node emit the declared type".to_owned(),
                    ))
                }
                None => {
                    let producers: Vec<&str> = registry
                        .kinds()
                        .filter(|e| e.adds().iter().any(|c| c.name == need.name))
                        .map(|e| e.kind())
                        .collect();
                    let fix = match producers.as_slice() {
                        [] => format!("no known component adds `{}`", need.name),
                        [one] => format!("put `{one}` before it"),
                        many => format!("put one of {} before it", many.join(", ")),
                    };
                    return Err((
                        node.name.to_owned(),
                        format!(
                            "`{}` ({}) needs {need}, which nothing upstream of it produces",
                            node.name, node.kind
                        ),
                        fix,
                    ));
                }
            }
        }
        let mut out = available;
        for add in &node.adds {
            out.insert(add.name, add.ty);
        }
        outputs.insert(node.name, out);
    }
    Ok(())
}

/// Columns present (with one type) on every input; none when there are no inputs.
fn intersect<'a>(mut inputs: impl Iterator<Item = &'a Columns>) -> Columns {
    let Some(first) = inputs.next() else {
        return Columns::new();
    };
    let mut acc = first.clone();
    for other in inputs {
        acc.retain(|name, ty| other.get(name) == Some(ty));
    }
    acc
}
