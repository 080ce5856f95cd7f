//! JSON transform: groups an array of records by a key and totals a numeric
//! field per group, like `SELECT key, count(*), sum(field) GROUP BY key`.
//!
//! Args: `--group-by KEY --sum FIELD`. Input: a JSON array of objects.
//!
//! Run: `fabric exec json-transform.wasm --input sales.json -- --group-by region --sum amount`

use std::collections::BTreeMap;
use std::process::ExitCode;

use fabric_guest::{Json, run};
use serde::Serialize;
use serde_json::Value;

#[derive(Serialize, Debug, PartialEq)]
struct Group {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

#[derive(Serialize, Debug)]
struct Report {
    group_by: String,
    sum_of: String,
    records: usize,
    groups: BTreeMap<String, Group>,
}

fn parse_args(args: &[String]) -> Result<(String, String), String> {
    let mut group_by = None;
    let mut sum = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--group-by" => group_by = Some(value.clone()),
            "--sum" => sum = Some(value.clone()),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: --group-by KEY --sum FIELD"
                ));
            }
        }
    }
    Ok((
        group_by.ok_or("missing --group-by KEY")?,
        sum.ok_or("missing --sum FIELD")?,
    ))
}

fn key_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "(null)".into(),
        other => other.to_string(),
    }
}

fn transform(records: &[Value], group_by: &str, field: &str) -> Result<Report, String> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (i, rec) in records.iter().enumerate() {
        let obj = rec
            .as_object()
            .ok_or_else(|| format!("record {i} is not an object"))?;
        let key = obj
            .get(group_by)
            .map(key_of)
            .unwrap_or_else(|| "(missing)".into());
        let amount = obj
            .get(field)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("record {i} has no numeric field {field:?}"))?;
        let g = groups.entry(key).or_insert(Group {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        });
        g.count += 1;
        g.sum += amount;
        g.min = g.min.min(amount);
        g.max = g.max.max(amount);
    }
    Ok(Report {
        group_by: group_by.into(),
        sum_of: field.into(),
        records: records.len(),
        groups,
    })
}

fn main() -> ExitCode {
    run(
        |Json(records): Json<Vec<Value>>| -> Result<Json<Report>, String> {
            let (group_by, field) = parse_args(&fabric_guest::args())?;
            transform(&records, &group_by, &field).map(Json)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_sums() {
        let recs: Vec<Value> =
            serde_json::from_str(r#"[{"r":"eu","a":2},{"r":"us","a":5},{"r":"eu","a":3.5}]"#)
                .unwrap();
        let rep = transform(&recs, "r", "a").unwrap();
        assert_eq!(rep.groups["eu"].count, 2);
        assert_eq!(rep.groups["eu"].sum, 5.5);
        assert_eq!(rep.groups["us"].max, 5.0);
        assert!(transform(&recs, "r", "missing").is_err());
        assert!(parse_args(&["--group-by".into()]).is_err());
    }
}
