//! Small charts drawn on the server as inline SVG: no script, no library,
//! nothing loaded from elsewhere. Each chart carries its figures as a table
//! beside it, so a screen reader (and anyone who wants the numbers) reads
//! the same data.

use maud::{Markup, html};

/// Series colours: dark enough to tell apart on white, and distinct in hue.
const COLOURS: [&str; 6] = ["#0b4f9c", "#b3261e", "#1e7d32", "#7a4d00", "#6a1b9a", "#00695c"];

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 36.0;
const BOTTOM: f64 = 28.0;

/// Bars per day, one colour per series (side by side within a day).
/// `days` are the x labels; `series` are (name, count per day).
pub fn daily_bars(id: &str, title: &str, days: &[String], series: &[(String, Vec<u64>)]) -> Markup {
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = WIDTH - LEFT - 4.0;
    let plot_h = HEIGHT - BOTTOM - 8.0;
    let slot = plot_w / days.len().max(1) as f64;
    let bar = (slot * 0.8 / series.len().max(1) as f64).max(1.0);
    let y = |v: u64| 8.0 + plot_h * (1.0 - v as f64 / max as f64);
    let label_every = days.len().div_ceil(8).max(1);
    html! {
        figure class="chart" id=(id) {
            figcaption { (title) }
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(title) {
                title { (title) }
                line x1=(LEFT) y1=(8.0 + plot_h) x2=(WIDTH - 4.0) y2=(8.0 + plot_h) stroke="#4a5260" {}
                text x=(LEFT - 4.0) y=(12.0) text-anchor="end" font-size="11" fill="#1b1f24" { (max) }
                text x=(LEFT - 4.0) y=(8.0 + plot_h) text-anchor="end" font-size="11" fill="#1b1f24" { "0" }
                @for (s, (_, values)) in series.iter().enumerate() {
                    @for (d, v) in values.iter().enumerate() {
                        @if *v > 0 {
                            rect x=(LEFT + d as f64 * slot + slot * 0.1 + s as f64 * bar) y=(y(*v))
                                width=(bar) height=(8.0 + plot_h - y(*v)) fill=(COLOURS[s % COLOURS.len()]) {}
                        }
                    }
                }
                @for (d, day) in days.iter().enumerate() {
                    @if d % label_every == 0 {
                        text x=(LEFT + d as f64 * slot + slot / 2.0) y=(HEIGHT - 10.0) text-anchor="middle"
                            font-size="10" fill="#1b1f24" { (day.get(5..).unwrap_or(day)) }
                    }
                }
            }
            ul class="legend" {
                @for (s, (name, values)) in series.iter().enumerate() {
                    li {
                        // A presentation attribute, not a style: the CSP forbids inline styles.
                        svg class="swatch" width="12" height="12" aria-hidden="true" { rect width="12" height="12" fill=(COLOURS[s % COLOURS.len()]) {} }
                        " " (name) " (" (values.iter().sum::<u64>()) ")"
                    }
                }
            }
            details {
                summary { (title) }
                div class="scroll" { table {
                    thead { tr { th scope="col" { "" } @for (name, _) in series { th scope="col" { (name) } } } }
                    tbody { @for (d, day) in days.iter().enumerate() {
                        tr { th scope="row" { (day) } @for (_, values) in series { td { (values.get(d).copied().unwrap_or(0)) } } }
                    } }
                } }
            }
        }
    }
}

/// Horizontal bars, largest first: how often each thing happened.
pub fn ranked_bars(id: &str, title: &str, items: &[(String, u64)]) -> Markup {
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let row = 22.0;
    let label_w = 220.0;
    let height = row * items.len().max(1) as f64 + 8.0;
    html! {
        figure class="chart" id=(id) {
            figcaption { (title) }
            svg viewBox={ "0 0 " (WIDTH) " " (height) } role="img" aria-label=(title) {
                title { (title) }
                @for (i, (name, n)) in items.iter().enumerate() {
                    text x=(label_w - 6.0) y=(4.0 + i as f64 * row + 15.0) text-anchor="end" font-size="12" fill="#1b1f24" { (name) }
                    rect x=(label_w) y=(4.0 + i as f64 * row + 3.0) height=(row - 6.0)
                        width=((WIDTH - label_w - 40.0) * *n as f64 / max as f64) fill=(COLOURS[0]) {}
                    text x=(label_w + 4.0 + (WIDTH - label_w - 40.0) * *n as f64 / max as f64) y=(4.0 + i as f64 * row + 15.0)
                        font-size="12" fill="#1b1f24" { (n) }
                }
            }
            details {
                summary { (title) }
                table { tbody { @for (name, n) in items { tr { th scope="row" { (name) } td { (n) } } } } }
            }
        }
    }
}
