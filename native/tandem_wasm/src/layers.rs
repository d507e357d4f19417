//! The demo editor's operations on layers, turned into diffs here so the page
//! never builds diffs or z indices itself. A layer is an object with `name`,
//! `color`, `x`, `y`, `w`, `h`; a group is a layer with `kind: "group"` whose
//! children name it as `parent`. Sibling order is the fractional `z`
//! (tandem_core's zindex), topmost last. Attributes come from the page and
//! go back to it as `serde_json` values, converted here.

use serde_json::{json, Map, Value};
use tandem_core::diff::{Attrs, PARENT, Z};
use tandem_core::{zindex, Diff, Document, Value as AttrValue};

/// A z above every child of `parent`.
fn top_z(doc: &Document, parent: Option<&str>) -> String {
    let top = doc.children(parent).last().and_then(|id| z_of(doc, id));
    match top {
        Some(z) => zindex::after(&z).unwrap_or_else(zindex::first),
        None => zindex::first(),
    }
}

fn z_of(doc: &Document, id: &str) -> Option<String> {
    doc.get(id)?.get(Z)?.as_str().map(str::to_owned)
}

fn parent_of(doc: &Document, id: &str) -> Option<String> {
    doc.get(id)?.get(PARENT)?.as_str().map(str::to_owned)
}

/// Adds layer `id` on top of its siblings (`attrs` may name a `parent`).
pub fn add(doc: &Document, id: &str, attrs: Map<String, Value>) -> Vec<Diff> {
    let mut attrs: Attrs = attrs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let parent = attrs
        .get(PARENT)
        .and_then(AttrValue::as_str)
        .map(str::to_owned);
    attrs.insert(Z.into(), top_z(doc, parent.as_deref()).into());
    vec![Diff::Add {
        id: id.into(),
        attrs,
    }]
}

/// Sets several attributes of one layer in one batch (move, resize, recolor).
pub fn set(id: &str, attrs: Map<String, Value>) -> Vec<Diff> {
    attrs
        .into_iter()
        .map(|(key, value)| {
            Diff::set(
                id,
                key,
                Some(value.into()).filter(|v: &AttrValue| !v.is_null()),
            )
        })
        .collect()
}

/// Moves a layer and its whole subtree by (dx, dy).
pub fn translate(doc: &Document, id: &str, dx: f64, dy: f64) -> Vec<Diff> {
    let mut diffs = Vec::new();
    let mut stack = vec![id.to_owned()];
    while let Some(id) = stack.pop() {
        let Some(attrs) = doc.get(&id) else { continue };
        for (key, delta) in [("x", dx), ("y", dy)] {
            let at = attrs.get(key).and_then(AttrValue::as_f64).unwrap_or(0.0);
            diffs.push(Diff::set(&id, key, Some((at + delta).round().into())));
        }
        stack.extend(doc.children(Some(&id)).map(str::to_owned));
    }
    diffs
}

/// Groups `ids` (siblings or not) under a new group `group_id` placed where
/// the topmost of them was; the group's frame bounds them.
pub fn group(doc: &Document, group_id: &str, ids: &[String]) -> Vec<Diff> {
    let members: Vec<&String> = ids.iter().filter(|id| doc.get(id).is_some()).collect();
    let Some(first) = members.first() else {
        return Vec::new();
    };
    let parent = parent_of(doc, first);
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for id in &members {
        let attrs = doc.get(id).expect("filtered above");
        let num = |k: &str| attrs.get(k).and_then(AttrValue::as_f64).unwrap_or(0.0);
        x0 = x0.min(num("x"));
        y0 = y0.min(num("y"));
        x1 = x1.max(num("x") + num("w"));
        y1 = y1.max(num("y") + num("h"));
    }
    let mut attrs = Map::new();
    attrs.insert("name".into(), json!("Group"));
    attrs.insert("kind".into(), json!("group"));
    attrs.insert("color".into(), json!("#888888"));
    for (k, v) in [("x", x0), ("y", y0), ("w", x1 - x0), ("h", y1 - y0)] {
        attrs.insert(k.into(), json!(v));
    }
    if let Some(parent) = &parent {
        attrs.insert(PARENT.into(), json!(parent));
    }
    let mut diffs = add(doc, group_id, attrs);
    let mut z = zindex::first();
    for id in members {
        diffs.push(Diff::set(id.as_str(), PARENT, Some(group_id.into())));
        diffs.push(Diff::set(id.as_str(), Z, Some(z.as_str().into())));
        z = zindex::after(&z).expect("canonical");
    }
    diffs
}

/// Swaps a layer one step up (`up`) or down among its siblings by giving it
/// a fresh z just past its neighbour; nothing when it is already at the end.
pub fn reorder(doc: &Document, id: &str, up: bool) -> Vec<Diff> {
    let parent = parent_of(doc, id);
    let mut zs: Vec<(String, String)> = doc
        .children(parent.as_deref())
        .filter_map(|sib| Some((z_of(doc, sib)?, sib.to_owned())))
        .collect();
    if !up {
        zs.reverse();
    }
    let Some(at) = zs.iter().position(|(_, sib)| sib == id) else {
        return Vec::new();
    };
    let Some((neighbour, _)) = zs.get(at + 1) else {
        return Vec::new();
    };
    let beyond = zs.get(at + 2).map(|(z, _)| z.as_str());
    let z = match (up, beyond) {
        (true, beyond) => zindex::between(neighbour, beyond),
        (false, Some(beyond)) => zindex::between(beyond, Some(neighbour)),
        (false, None) => zindex::before(neighbour).expect("canonical"),
    };
    vec![Diff::set(id, Z, Some(z.into()))]
}

/// Every layer in paint order (parents before children, siblings by z), each
/// as its attributes plus `id` and `depth`.
pub fn paint_order(doc: &Document) -> Vec<Value> {
    let mut out = Vec::with_capacity(doc.len());
    let mut stack: Vec<(String, usize)> = doc
        .children(None)
        .map(|id| (id.to_owned(), 0))
        .collect::<Vec<_>>();
    stack.reverse();
    while let Some((id, depth)) = stack.pop() {
        let mut layer: Map<String, Value> = doc
            .get(&id)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.into_string(), v.into()))
            .collect();
        layer.insert("id".into(), json!(id));
        layer.insert("depth".into(), json!(depth));
        out.push(Value::Object(layer));
        let kids: Vec<_> = doc
            .children(Some(&id))
            .map(|k| (k.to_owned(), depth + 1))
            .collect();
        stack.extend(kids.into_iter().rev());
    }
    out
}
