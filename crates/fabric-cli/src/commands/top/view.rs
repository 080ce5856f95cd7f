//! Drawing `fabric top`: a header with the cluster's figures, tabs, and
//! the selected view as a table (workers, tasks) or a list (the log).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{
    Block, Borders, List, ListItem, ListState, Paragraph, Row, Table, TableState, Tabs,
};
use serde_json::Value;

use super::app::{App, Tab};

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn header(app: &App) -> String {
    let s = &app.stats;
    let done: u64 = s["finished"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    let failed = [
        "failed",
        "timed_out",
        "trapped",
        "fuel_exhausted",
        "memory_exceeded",
    ]
    .iter()
    .filter_map(|k| s["finished"][*k].as_u64())
    .sum::<u64>();
    format!(
        "{}  queued {}  running {}  finished {} ({} failed)  dead letters {}  workers {}  free slots {}",
        app.url,
        text(&s["queued"]),
        text(&s["running"]),
        done,
        failed,
        text(&s["dead_letters"]),
        text(&s["workers"]),
        text(&s["free_slots"]),
    )
}

/// Draws the whole screen.
pub(crate) fn draw(frame: &mut Frame<'_>, app: &App) {
    let [top, tabs, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(header(app)), top);
    let titles: Vec<Line<'_>> = Tab::ALL.iter().map(|t| Line::from(t.title())).collect();
    let index = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    frame.render_widget(
        Tabs::new(titles)
            .select(index)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        tabs,
    );
    let selected = Style::new().add_modifier(Modifier::REVERSED);
    match app.tab {
        Tab::Workers => {
            let rows = app.workers.iter().map(|w| {
                Row::new(vec![
                    text(&w["name"]),
                    text(&w["state"]),
                    format!("{}/{}", text(&w["running"]), text(&w["slots"])),
                    w["memory_bytes"]
                        .as_u64()
                        .map_or_else(|| "-".into(), fabric_proto::format_size),
                    w["labels"]
                        .as_array()
                        .map(|l| l.iter().map(text).collect::<Vec<_>>().join(","))
                        .unwrap_or_default(),
                    text(&w["addr"]),
                ])
            });
            let table = Table::new(
                rows,
                [
                    Constraint::Length(16),
                    Constraint::Length(9),
                    Constraint::Length(7),
                    Constraint::Length(10),
                    Constraint::Length(16),
                    Constraint::Min(10),
                ],
            )
            .header(Row::new([
                "NAME", "STATE", "SLOTS", "MEMORY", "LABELS", "ADDRESS",
            ]))
            .block(Block::new().borders(Borders::TOP).title("workers"))
            .row_highlight_style(selected);
            let mut state = TableState::default().with_selected(Some(app.selected));
            frame.render_stateful_widget(table, body, &mut state);
        }
        Tab::Tasks => {
            let rows = app.tasks.iter().map(|t| {
                Row::new(vec![
                    text(&t["id"]),
                    t["status"]
                        .as_str()
                        .map_or_else(|| text(&t["state"]), str::to_owned),
                    text(&t["worker_name"]),
                    text(&t["attempt"]),
                    t["module"]
                        .as_str()
                        .map(|m| format!("wasm {}", m.get(..12).unwrap_or(m)))
                        .or_else(|| t["command"].as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    text(&t["trace"]),
                ])
            });
            let table = Table::new(
                rows,
                [
                    Constraint::Length(37),
                    Constraint::Length(16),
                    Constraint::Length(12),
                    Constraint::Length(7),
                    Constraint::Length(18),
                    Constraint::Min(8),
                ],
            )
            .header(Row::new([
                "ID", "STATUS", "WORKER", "ATTEMPT", "RUNS", "TRACE",
            ]))
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .title("tasks, newest first"),
            )
            .row_highlight_style(selected);
            let mut state = TableState::default().with_selected(Some(app.selected));
            frame.render_stateful_widget(table, body, &mut state);
        }
        Tab::Jobs => {
            let rows = app.jobs.iter().map(|j| {
                let counts = j["counts"].as_object().map_or_else(String::new, |m| {
                    m.iter()
                        .map(|(k, v)| format!("{} {k}", text(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                });
                Row::new(vec![
                    text(&j["id"]),
                    text(&j["name"]),
                    text(&j["state"]),
                    counts,
                ])
            });
            let table = Table::new(
                rows,
                [
                    Constraint::Length(41),
                    Constraint::Length(16),
                    Constraint::Length(10),
                    Constraint::Min(10),
                ],
            )
            .header(Row::new(["JOB", "NAME", "STATE", "TASKS"]))
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .title("jobs, newest first"),
            )
            .row_highlight_style(selected);
            let mut state = TableState::default().with_selected(Some(app.selected));
            frame.render_stateful_widget(table, body, &mut state);
        }
        Tab::Log => {
            let items: Vec<ListItem<'_>> =
                app.log.iter().map(|l| ListItem::new(l.as_str())).collect();
            let list = List::new(items)
                .block(Block::new().borders(Borders::TOP).title("cluster events"))
                .highlight_style(selected);
            let mut state = ListState::default().with_selected(Some(app.selected));
            frame.render_stateful_widget(list, body, &mut state);
        }
    }
    let foot_text = match (&app.error, &app.stream_error) {
        (Some(e), _) => format!("cannot read the dispatcher: {e}"),
        (None, Some(e)) => format!("no live events: {e} (retrying)"),
        (None, None) => "q quit  tab/1-4 views  j/k or arrows move".to_owned(),
    };
    frame.render_widget(Paragraph::new(foot_text), foot);
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use serde_json::json;

    use super::draw;
    use crate::commands::top::app::{App, Key, Update};

    fn screen(app: &App) -> String {
        let mut term = Terminal::new(TestBackend::new(120, 20)).unwrap();
        term.draw(|f| draw(f, app)).unwrap();
        let buf = term.backend().buffer().clone();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn app() -> App {
        let mut app = App::new("http://127.0.0.1:7080");
        app.apply(Update::Snapshot {
            stats: json!({"queued": 3, "running": 1, "finished": {"succeeded": 5, "failed": 2},
                "dead_letters": 1, "workers": 2, "free_slots": 7}),
            workers: vec![
                json!({"name": "local-0", "state": "ready", "running": 1, "slots": 4,
                    "memory_bytes": 2147483648u64, "labels": ["local"], "addr": "127.0.0.1:5000"}),
                json!({"name": "gpu-box", "state": "draining", "running": 0, "slots": 4,
                    "memory_bytes": 1073741824u64, "labels": [], "addr": "10.0.0.9:5000"}),
            ],
            tasks: vec![json!({"id": "01a2-task", "state": "done", "status": "succeeded",
                "worker_name": "local-0", "attempt": 1, "module": "59aed448496fb07e", "trace": "order-1"})],
            jobs: vec![json!({"id": "job-0190c7a2-3b4c-7d5e-8f60-123456789abc", "name": "wordcount",
                "state": "running", "counts": {"queued": 1, "succeeded": 4}})],
        });
        app
    }

    #[test]
    fn the_workers_view_shows_figures_and_workers() {
        let s = screen(&app());
        assert!(
            s.contains("queued 3  running 1  finished 7 (2 failed)"),
            "{s}"
        );
        assert!(s.contains("local-0") && s.contains("gpu-box"), "{s}");
        assert!(
            s.contains("draining") && s.contains("1/4") && s.contains("2 GiB"),
            "{s}"
        );
        assert!(s.contains("q quit"), "{s}");
    }

    #[test]
    fn the_tasks_log_and_jobs_views_show_their_rows() {
        let mut app = app();
        app.key(Key::Tab(1));
        let s = screen(&app);
        assert!(
            s.contains("01a2-task") && s.contains("succeeded") && s.contains("order-1"),
            "{s}"
        );
        app.apply(Update::Event(
            "finished".into(),
            json!({"task": "01a2-task", "status": "succeeded", "at_ms": 3_600_000}),
        ));
        app.key(Key::Tab(2));
        let s = screen(&app);
        assert!(s.contains("01:00:00 finished 01a2-task succeeded"), "{s}");
        app.key(Key::Tab(3));
        let s = screen(&app);
        assert!(
            s.contains("job-0190c7a2-3b4c-7d5e-8f60-123456789abc")
                && s.contains("wordcount")
                && s.contains("1 queued, 4 succeeded"),
            "{s}"
        );
        app.apply(Update::Error("connection refused".into()));
        assert!(screen(&app).contains("cannot read the dispatcher: connection refused"));
    }
}
