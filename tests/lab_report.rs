//! The lab's HTML report (`lvsd lab --report FILE.html`) rendered by a real browser: headless
//! Chromium (Debian package `chromium`) loads the page built from a lab report (fixture
//! tests/fixtures/lab/report.json: `lvsd lab --mode dr --verify --json` in the VM tier's
//! guest) and must have drawn the chart: one SVG series per real
//! server, one marker per phase, one VRRP strip per director, and, in the screenshot, the
//! series' colours over more pixels than the legend alone has. Skips without chromium, or
//! fails under LVSD_REQUIRE_PRIVILEGED=1.

use std::path::Path;
use std::process::Command;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// Run chromium headless on `page` with `args`, bounded in time.
fn run_chromium(bin: &str, args: &[&str], page: &Path) -> std::process::Output {
    let url = format!("file://{}", page.display());
    let home = page.parent().unwrap().join("home");
    Command::new("timeout")
        .args(["--kill-after=5", "90", bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        // Its profile and crash files stay in the test's directory.
        .arg(format!("--user-data-dir={}", home.display()))
        .args(args)
        .arg(&url)
        .env("HOME", &home)
        .output()
        .unwrap()
}

/// Pixels of exactly `rgb` in a PNG (8-bit RGB or RGBA, not interlaced), decoded with
/// Python's standard library.
fn pixels_of(png: &Path, rgb: [u8; 3]) -> u64 {
    const PY: &str = r#"
import sys, struct, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat, w, h, ctype = 8, b'', 0, 0, 0
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
        assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(idat), w * bpp
prev, out, want, i = bytearray(stride), 0, bytes(int(x) for x in sys.argv[2:5]), 0
for _ in range(h):
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    out += sum(1 for x in range(0, stride, bpp) if line[x:x + 3] == want)
    prev = line
print(out)
"#;
    let args: Vec<String> = rgb.iter().map(|c| c.to_string()).collect();
    let o = Command::new("python3").args(["-c", PY]).arg(png).args(&args).output().unwrap();
    assert!(o.status.success(), "decoding the screenshot: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

#[test]
fn chromium_draws_the_lab_report() {
    let Some(bin) = chromium() else {
        lvsd::net::netns::cannot_run("chromium_draws_the_lab_report", "chromium is not installed (apt-get install chromium)");
        return;
    };
    let report: serde_json::Value = serde_json::from_str(include_str!("fixtures/lab/report.json")).unwrap();
    let reals = report["reals"].as_array().unwrap().len();
    let phases = report["phases"].as_array().unwrap().len();
    let directors = report["vrrp_states"].as_object().unwrap().len();
    assert!(reals >= 2 && phases >= 3 && directors == 2, "the fixture has something to draw");

    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, lvsd::lab::report::html(&report)).unwrap();

    // The DOM after Chromium parsed and laid out the page.
    let out = run_chromium(bin, &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && dom.contains("</svg>"),
        "chromium --dump-dom ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dom.matches(r#"class="series real""#).count(), reals, "one series per real server");
    for r in report["reals"].as_array().unwrap() {
        let name = r.as_str().unwrap();
        let series = dom.split(&format!(r#"data-real="{name}""#)).nth(1).unwrap_or_else(|| panic!("no series for {name}"));
        let points = series.split(r#"points=""#).nth(1).unwrap().split('"').next().unwrap();
        // A point per second from the first phase on (setting up is not drawn).
        let first = report["phases"][0]["start"].as_f64().unwrap().floor() as usize;
        let expected = report["per_second"]["reals"][name].as_array().unwrap().len() - first;
        assert_eq!(points.split_whitespace().count(), expected, "{name}: a point per second");
    }
    assert_eq!(dom.matches(r#"class="phase-marker""#).count(), phases, "one marker per phase");
    for p in report["phases"].as_array().unwrap() {
        assert!(dom.contains(&format!(r#"data-phase="{}""#, p["name"].as_str().unwrap())), "marker for {}", p["name"]);
    }
    assert_eq!(dom.matches(r#"class="vrrp-state""#).count(), directors, "one VRRP strip per director");
    assert!(dom.contains(r#"class="series failed""#));
    assert!(dom.contains("<table class=\"summary\">") && dom.contains("<table class=\"timeline\">"));

    // What was painted: each real's colour over a whole line's worth of pixels (the legend's
    // square alone has 144), and the page is wider than blank.
    let shot = dir.path().join("report.png");
    let out = run_chromium(bin, &["--hide-scrollbars", "--window-size=1280,1000", &format!("--screenshot={}", shot.display())], &page);
    assert!(shot.exists(), "chromium --screenshot ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    for (name, colour) in [("rs1", [0x1f, 0x77, 0xb4]), ("rs2", [0x2c, 0xa0, 0x2c])] {
        let n = pixels_of(&shot, colour);
        assert!(n > 600, "{name}'s series: {n} pixels of its colour");
    }
}
