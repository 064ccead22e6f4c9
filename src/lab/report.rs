//! `lvsd lab --report FILE.html`: the lab's JSON report as one self-contained HTML page. A
//! timeline chart drawn here as inline SVG (requests per second per real server, failed
//! requests, each director's VRRP state, the phase markers) above the summary tables. No
//! script and nothing fetched: the page opens the same from a mail attachment as on the
//! machine that ran the lab.
//!
//! A pure function of the report (`Value` from `lab::run`), so it is tested on fixtures. A
//! field missing from the report draws nothing for it rather than failing: an interrupted
//! or older report still renders what it has.

use serde_json::Value;
use std::fmt::Write;

/// Chart geometry, in SVG user units (the SVG scales to the page width).
const WIDTH: f64 = 1000.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
/// Room above the plot for the phase names.
const TOP: f64 = 56.0;
const PLOT_H: f64 = 240.0;
/// One VRRP state strip per director below the plot.
const STRIP_H: f64 = 18.0;
const STRIP_GAP: f64 = 6.0;

/// Series colours for the real servers (cycled), chosen to be told apart in print.
const PALETTE: [&str; 8] = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f"];
const FAILED: &str = "#d62728";

fn state_colour(state: &str) -> &'static str {
    match state {
        // Pale, so that they are never taken for a series.
        "master" => "#9fd89f",
        "backup" => "#a9c9ea",
        "initialize" => "#ffe08a",
        "fault" => "#ffb570",
        _ => "#d6d6d6",
    }
}

/// Text for HTML and SVG content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn num(v: &Value) -> f64 {
    v.as_f64().filter(|x| x.is_finite()).unwrap_or(0.0)
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A tick step of 1, 2 or 5 times a power of ten that gives at most `max` ticks up to `top`.
fn tick_step(top: f64, max: f64) -> f64 {
    let mut step = 1.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            if top / (step * m) <= max {
                return step * m;
            }
        }
        step *= 10.0;
    }
}

/// The report's per-real series and failures, and the span the chart shows, in seconds
/// since the lab started: from the first phase (setting up is not drawn) to the end.
struct Series {
    reals: Vec<(String, Vec<f64>)>,
    failed: Vec<f64>,
    start: f64,
    duration: f64,
}

fn series(report: &Value) -> Series {
    let ps = &report["per_second"];
    // The configured reals first, in their order; then any other name that answered.
    let mut reals: Vec<(String, Vec<f64>)> =
        arr(&report["reals"]).iter().map(|r| (text(r).to_string(), arr(&ps["reals"][text(r)]).iter().map(num).collect())).collect();
    if let Some(m) = ps["reals"].as_object() {
        for (name, v) in m {
            if !reals.iter().any(|(n, _)| n == name) {
                reals.push((name.clone(), arr(v).iter().map(num).collect()));
            }
        }
    }
    let failed: Vec<f64> = arr(&ps["failed"]).iter().map(num).collect();
    let buckets = reals.iter().map(|(_, v)| v.len()).chain([failed.len()]).max().unwrap_or(0) as f64;
    let phase_end = arr(&report["phases"]).iter().map(|p| num(&p["end"])).fold(0.0, f64::max);
    // Bounded (a report from elsewhere may hold anything): the scale's arithmetic stays exact.
    let duration = num(&report["duration"]).max(buckets).max(phase_end).clamp(1.0, 1e9);
    let first_phase = arr(&report["phases"]).first().map(|p| num(&p["start"]).floor()).unwrap_or(0.0);
    let start = first_phase.clamp(0.0, duration - 1.0);
    Series { reals, failed, start, duration }
}

/// The chart: one `<svg>`, its parts marked with classes a reader (or a test) can find:
/// `series real` per real server, `series failed`, `vrrp-state` per director and
/// `phase-marker` per phase.
pub fn chart(report: &Value) -> String {
    let s = series(report);
    let directors: Vec<(&String, &Value)> = report["vrrp_states"].as_object().map(|m| m.iter().collect()).unwrap_or_default();
    let strips_h = directors.len() as f64 * (STRIP_H + STRIP_GAP);
    let height = TOP + PLOT_H + 28.0 + strips_h + 8.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let span = s.duration - s.start;
    let x = |t: f64| LEFT + plot_w * ((t - s.start) / span).clamp(0.0, 1.0);
    // Seconds before the chart's start are not drawn.
    let shown = |i: usize| i as f64 >= s.start;
    let peak = s.reals.iter().flat_map(|(_, v)| v.iter()).chain(s.failed.iter()).copied().fold(0.0, f64::max).clamp(1.0, 1e12);
    let ystep = tick_step(peak, 6.0);
    let ytop = (peak / ystep).ceil() * ystep;
    let y = |v: f64| TOP + PLOT_H - PLOT_H * (v / ytop).clamp(0.0, 1.0);

    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {height:.0}" width="100%" role="img" aria-label="Requests per second per real server, failed requests, VRRP state of each director, and the phases of the run">"#
    );
    // Phase bands (alternate shading) under everything else.
    for (i, p) in arr(&report["phases"]).iter().enumerate() {
        let (a, b) = (x(num(&p["start"])), x(num(&p["end"])));
        if i % 2 == 1 && b > a {
            let _ =
                writeln!(o, r##"<rect class="phase-band" x="{a:.1}" y="{TOP}" width="{:.1}" height="{PLOT_H}" fill="#f2f2f2"/>"##, b - a);
        }
    }
    // Axes and grid.
    // Ticks by count, not by adding steps: in a report from elsewhere (--from-json) a value
    // can be so large that adding a step no longer changes it.
    for k in 0..=((ytop / ystep).round() as usize).min(20) {
        let v = k as f64 * ystep;
        let yy = y(v);
        let _ = writeln!(
            o,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="tick">{v}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            yy + 4.0
        );
    }
    let xstep = tick_step(span, 12.0);
    let first = (s.start / xstep).ceil() * xstep;
    for k in 0..=(((s.duration - first) / xstep).floor().max(0.0) as usize).min(20) {
        let t = first + k as f64 * xstep;
        let _ = writeln!(o, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="tick">{t}s</text>"#, x(t), TOP + PLOT_H + 16.0);
    }
    let _ = writeln!(
        o,
        r##"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle" class="axis">requests/s</text>"##,
        TOP + PLOT_H / 2.0,
        TOP + PLOT_H / 2.0
    );
    let _ = writeln!(
        o,
        r##"<polyline points="{LEFT},{TOP} {LEFT},{:.1} {:.1},{:.1}" fill="none" stroke="#555"/>"##,
        TOP + PLOT_H,
        WIDTH - RIGHT,
        TOP + PLOT_H
    );
    // Failed requests: bars, one per second that had any.
    let bar = (plot_w / span).max(1.0);
    let _ = writeln!(o, r#"<g class="series failed" data-series="failed">"#);
    for (i, f) in s.failed.iter().enumerate().filter(|(i, f)| **f > 0.0 && shown(*i)) {
        let _ = writeln!(
            o,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{FAILED}" opacity="0.75"><title>{f} failed at {i}s</title></rect>"#,
            x(i as f64),
            y(*f),
            bar * 0.9,
            TOP + PLOT_H - y(*f)
        );
    }
    let _ = writeln!(o, "</g>");
    // One line per real: requests it answered in each second, drawn at the second's middle.
    for (k, (name, v)) in s.reals.iter().enumerate() {
        let points: Vec<String> =
            v.iter().enumerate().filter(|(i, _)| shown(*i)).map(|(i, c)| format!("{:.1},{:.1}", x(i as f64 + 0.5), y(*c))).collect();
        let _ = writeln!(
            o,
            r#"<polyline class="series real" data-real="{}" points="{}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round"><title>{}</title></polyline>"#,
            esc(name),
            points.join(" "),
            PALETTE[k % PALETTE.len()],
            esc(name)
        );
    }
    // Each director's VRRP state: a strip of coloured spans from one change to the next.
    for (k, (name, changes)) in directors.iter().enumerate() {
        let top = TOP + PLOT_H + 28.0 + k as f64 * (STRIP_H + STRIP_GAP);
        let _ = writeln!(o, r#"<g class="vrrp-state" data-director="{}">"#, esc(name));
        let _ = writeln!(o, r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="label">{}</text>"#, LEFT - 6.0, top + 13.0, esc(name));
        let changes = arr(changes);
        for (i, c) in changes.iter().enumerate() {
            let from = num(&c["at"]);
            let to = changes.get(i + 1).map(|n| num(&n["at"])).unwrap_or(s.duration);
            let st = text(&c["state"]);
            let (a, b) = (x(from), x(to));
            let _ = writeln!(
                o,
                r#"<rect class="state" data-state="{}" x="{a:.1}" y="{top:.1}" width="{:.1}" height="{STRIP_H}" fill="{}"><title>{}: {} from {from:.2}s</title></rect>"#,
                esc(st),
                (b - a).max(0.5),
                state_colour(st),
                esc(name),
                esc(st)
            );
        }
        let _ = writeln!(o, "</g>");
    }
    // Phase markers on top: a dashed line at each phase's start through plot and strips; a
    // name close to the previous one goes a row higher so that the two stay readable.
    let mut last_label: Option<(f64, bool)> = None;
    for p in arr(&report["phases"]) {
        let xx = x(num(&p["start"]));
        let name = text(&p["name"]);
        let high = last_label.is_some_and(|(lx, lh)| xx - lx < 70.0 && !lh);
        last_label = Some((xx, high));
        let ly = if high { TOP - 24.0 } else { TOP - 8.0 };
        let _ = writeln!(
            o,
            r##"<g class="phase-marker" data-phase="{n}"><line x1="{xx:.1}" x2="{xx:.1}" y1="{:.1}" y2="{:.1}" stroke="#444" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" transform="rotate(-20 {:.1} {:.1})" class="phase">{n}</text><title>{n}: {}</title></g>"##,
            if high { TOP - 20.0 } else { TOP - 4.0 },
            height - 8.0,
            xx + 2.0,
            ly,
            xx + 2.0,
            ly,
            esc(text(&p["what"])),
            n = esc(name)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// The legend under the chart (HTML, so it wraps).
fn legend(report: &Value) -> String {
    let s = series(report);
    let mut o = String::from(r#"<p class="legend">"#);
    for (k, (name, _)) in s.reals.iter().enumerate() {
        let _ = write!(o, r#"<span><i style="background:{}"></i>{}</span>"#, PALETTE[k % PALETTE.len()], esc(name));
    }
    let _ = write!(o, r#"<span><i style="background:{FAILED}"></i>failed requests</span>"#);
    for st in ["master", "backup", "initialize", "fault", "down"] {
        let _ = write!(o, r#"<span><i style="background:{}"></i>{st}</span>"#, state_colour(st));
    }
    o.push_str("</p>\n");
    o
}

fn summary(report: &Value) -> String {
    let reals: Vec<&str> = arr(&report["reals"]).iter().map(text).collect();
    let mut o =
        String::from("<table class=\"summary\">\n<tr><th>phase</th><th>what</th><th>from</th><th>to</th><th>sent</th><th>failed</th>");
    for r in &reals {
        let _ = write!(o, "<th>{}</th>", esc(r));
    }
    o.push_str("<th>failover on the wire</th></tr>\n");
    for p in arr(&report["phases"]) {
        let failed = p["failed"].as_u64().unwrap_or(0);
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{:.2}s</td><td>{:.2}s</td><td>{}</td><td{}>{failed}</td>",
            esc(text(&p["name"])),
            esc(text(&p["what"])),
            num(&p["start"]),
            num(&p["end"]),
            p["sent"].as_u64().unwrap_or(0),
            if failed > 0 { " class=\"bad\"" } else { "" }
        );
        for r in &reals {
            let _ = write!(o, "<td>{}</td>", p["distribution"][*r].as_u64().unwrap_or(0));
        }
        let fo: Vec<String> = arr(&p["failovers"])
            .iter()
            .map(|f| format!("{} &rarr; {} ({} ms)", esc(text(&f["from"])), esc(text(&f["to"])), f["ms"].as_u64().unwrap_or(0)))
            .collect();
        let _ = writeln!(o, "<td>{}</td></tr>", if fo.is_empty() { "-".to_string() } else { fo.join(", ") });
    }
    o.push_str("</table>\n");
    o
}

fn verdicts(report: &Value) -> String {
    let v = arr(&report["verdicts"]);
    if v.is_empty() {
        return String::new();
    }
    let mut o = String::from("<h2>Claims</h2>\n<ul class=\"verdicts\">\n");
    for x in v {
        let pass = x["pass"] == true;
        let _ = writeln!(
            o,
            "<li class=\"{}\"><b>{}</b> {}</li>",
            if pass { "pass" } else { "fail" },
            if pass { "PASS" } else { "FAIL" },
            esc(text(&x["line"]))
        );
    }
    o.push_str("</ul>\n");
    o
}

fn timeline(report: &Value) -> String {
    let mut o = String::from("<table class=\"timeline\">\n<tr><th>at</th><th>event</th></tr>\n");
    for e in arr(&report["timeline"]) {
        let _ = writeln!(o, "<tr><td>{:.2}s</td><td>{}</td></tr>", num(&e["at"]), esc(text(&e["event"])));
    }
    o.push_str("</table>\n");
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}\
h1{font-size:1.4em;margin-bottom:0}p.meta{color:#555;margin-top:4px}\
svg.chart{border:1px solid #ddd;background:#fff}svg text{font-size:11px;fill:#333}\
svg text.phase{font-size:11px;fill:#000}svg text.axis{font-size:12px}\
p.legend span{margin-right:14px;white-space:nowrap}p.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}\
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}table.timeline td:nth-child(2){text-align:left}\
td.bad{color:#b00;font-weight:bold}li.pass b{color:#2a2}li.fail b{color:#b00}";

/// The whole page.
pub fn html(report: &Value) -> String {
    let title = format!("lvsd lab: {} mode, VIP {}", text(&report["mode"]), text(&report["vip"]));
    let mut o = String::new();
    let _ = writeln!(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>", esc(&title));
    let _ = writeln!(o, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(o, "<h1>{}</h1>", esc(&title));
    let _ = writeln!(
        o,
        "<p class=\"meta\">{} real servers, {} requests, Master_Down_Interval {} ms, {:.1} s</p>",
        arr(&report["reals"]).len(),
        report["requests"].as_u64().unwrap_or(0),
        report["master_down_interval_ms"].as_u64().unwrap_or(0),
        series(report).duration
    );
    o.push_str(&chart(report));
    o.push_str(&legend(report));
    o.push_str(&verdicts(report));
    o.push_str("<h2>Summary</h2>\n");
    o.push_str(&summary(report));
    o.push_str("<h2>Timeline</h2>\n");
    o.push_str(&timeline(report));
    o.push_str("</body>\n</html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub fn fixture() -> Value {
        json!({
            "mode": "dr", "vip": "198.51.100.100:80", "reals": ["rs1", "rs2"], "master_down_interval_ms": 3609,
            "requests": 20, "duration": 6.0,
            "phases": [
                {"name": "baseline", "what": "both up", "start": 0.0, "end": 2.0, "sent": 10, "failed": 0,
                 "distribution": {"rs1": 5, "rs2": 5}, "failovers": []},
                {"name": "kill", "what": "SIGKILL the master <lvs01>", "start": 2.0, "end": 6.0, "sent": 10, "failed": 3,
                 "distribution": {"rs1": 4, "rs2": 3}, "failovers": [{"at": 5.1, "from": "lvs01", "to": "lvs02", "ms": 3600}]},
            ],
            "timeline": [{"at": 0.1, "event": "lvs01: lvsd started"}, {"at": 5.1, "event": "wire: VIP moved lvs01 -> lvs02 & co"}],
            "per_second": {"reals": {"rs1": [2, 3, 2, 0, 0, 2], "rs2": [3, 2, 1, 0, 0, 2]}, "failed": [0, 0, 0, 2, 1, 0]},
            "vrrp_states": {"lvs01": [{"at": 0.0, "state": "master"}, {"at": 2.1, "state": "down"}],
                            "lvs02": [{"at": 0.0, "state": "backup"}, {"at": 5.0, "state": "master"}]},
            "verdicts": [{"pass": true, "line": "baseline: every real server answered"}, {"pass": false, "line": "kill: 3 > 2"}],
        })
    }

    #[test]
    fn the_chart_has_a_series_per_real_a_strip_per_director_and_a_marker_per_phase() {
        let page = html(&fixture());
        assert_eq!(page.matches(r#"class="series real""#).count(), 2);
        assert!(page.contains(r#"data-real="rs1""#) && page.contains(r#"data-real="rs2""#));
        assert_eq!(page.matches(r#"class="phase-marker""#).count(), 2);
        assert_eq!(page.matches(r#"class="vrrp-state""#).count(), 2);
        assert_eq!(page.matches(r#"<rect class="state""#).count(), 4);
        // Two seconds had failures: two bars.
        assert_eq!(page.matches(&format!(r#"fill="{FAILED}" opacity"#)).count(), 2);
        assert!(page.contains("<td class=\"bad\">3</td>"), "the failed count stands out");
        assert!(page.contains("lvs01 &rarr; lvs02 (3600 ms)"));
        assert!(page.contains("<li class=\"fail\"><b>FAIL</b> kill: 3 &gt; 2</li>"));
    }

    #[test]
    fn text_from_the_report_is_escaped() {
        let page = html(&fixture());
        assert!(page.contains("SIGKILL the master &lt;lvs01&gt;"));
        assert!(page.contains("lvs02 &amp; co"));
        assert!(!page.contains("<lvs01>"));
        let mut r = fixture();
        r["reals"] = json!(["<script>x</script>"]);
        r["per_second"]["reals"] = json!({"<script>x</script>": [1]});
        assert!(!html(&r).contains("<script>"));
    }

    #[test]
    fn the_page_is_self_contained() {
        let page = html(&fixture());
        for needle in ["<script", "src=", "href=", "url(", "@import", "http:", "https:", "<link"] {
            assert!(!page.contains(needle), "{needle} in the page");
        }
    }

    #[test]
    fn series_follow_the_counts() {
        let page = chart(&fixture());
        // Peak 3 requests/s: y ticks 0..3; rs1's second bucket (3 at t=1.5 s) sits at the top.
        let top = TOP;
        let x = LEFT + (WIDTH - LEFT - RIGHT) * 1.5 / 6.0;
        assert!(page.contains(&format!("{x:.1},{top:.1}")), "{page}");
        // A phase marker sits at its start.
        let x2 = LEFT + (WIDTH - LEFT - RIGHT) * 2.0 / 6.0;
        assert!(page.contains(&format!(r#"data-phase="kill"><line x1="{x2:.1}""#)), "{page}");
    }

    #[test]
    fn a_report_without_series_still_renders() {
        for r in [json!({}), json!({"phases": "nonsense", "per_second": 3, "vrrp_states": []}), json!(null)] {
            let page = html(&r);
            assert!(page.contains("<svg") && page.ends_with("</html>\n"));
            assert_eq!(page.matches(r#"class="series real""#).count(), 0);
        }
    }

    #[test]
    fn absurd_numbers_draw_a_bounded_chart() {
        for (start, end, count) in [(1e20 - 1.0, 1e20, 1e18), (0.0, f64::MAX, f64::MAX), (-5.0, -1.0, -3.0), (3.0, 2.0, 1e-300)] {
            let r = json!({
                "reals": ["rs1"], "duration": end,
                "phases": [{"name": "p", "start": start, "end": end}],
                "per_second": {"reals": {"rs1": [count, 1, 2]}, "failed": [count]},
                "vrrp_states": {"lvs01": [{"at": start, "state": "master"}, {"at": end, "state": "down"}]},
            });
            let page = html(&r);
            assert!(page.len() < 20_000, "{start} {end} {count}: {} bytes", page.len());
            assert!(!page.contains("NaN") && !page.contains("inf"), "{page}");
        }
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(3.0, 6.0), 1.0);
        assert_eq!(tick_step(45.0, 6.0), 10.0);
        assert_eq!(tick_step(61.0, 12.0), 10.0);
        assert_eq!(tick_step(0.5, 6.0), 1.0);
    }
}
