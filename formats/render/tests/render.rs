//! Behaviour of the renderer that needs no external tools.

mod common;

use common::*;
use divoc_render::{RenderError, RenderRequest};

#[test]
fn language_follows_state_with_default() {
    let r = renderer();
    assert_eq!(r.language_for_state(Some("Tamil Nadu")), "ta");
    assert_eq!(r.language_for_state(Some("west bengal")), "bn");
    assert_eq!(r.language_for_state(Some("Uttar Pradesh")), "hi");
    assert_eq!(r.language_for_state(Some("Jammu and Kashmir")), "ur");
    assert_eq!(r.language_for_state(Some("Kerala")), "en");
    assert_eq!(r.language_for_state(None), "en");
}

#[test]
fn unknown_tenant_and_language_list_what_exists() {
    let r = renderer();
    let doses = doses("Ananya", "Kerala");
    let qr = qr();
    let err = r
        .render(&RenderRequest {
            tenant: "acme",
            language: None,
            doses: &doses,
            current: 0,
            qr: &qr,
        })
        .unwrap_err();
    assert!(matches!(err, RenderError::UnknownTenant { .. }));
    assert!(err.to_string().contains("default"), "{err}");
    let err = r
        .render(&RenderRequest {
            tenant: "default",
            language: Some("fr"),
            doses: &doses,
            current: 0,
            qr: &qr,
        })
        .unwrap_err();
    let msg = err.to_string();
    for lang in ["bn", "en", "hi", "ta", "ur"] {
        assert!(msg.contains(lang), "{msg}");
    }
    let err = r
        .render(&RenderRequest {
            tenant: "default",
            language: None,
            doses: &doses,
            current: 5,
            qr: &qr,
        })
        .unwrap_err();
    assert!(matches!(err, RenderError::Request(_)));
}

#[test]
fn state_picks_the_template_when_no_language_is_given() {
    let r = renderer();
    let qr = qr();
    let doses = doses("முத்துலட்சுமி", "Tamil Nadu");
    let out = r
        .render_with_report(&RenderRequest {
            tenant: "default",
            language: None,
            doses: &doses,
            current: 0,
            qr: &qr,
        })
        .unwrap();
    assert_eq!(out.language, "ta");
}

#[test]
fn every_name_in_every_language_shapes_without_notdef() {
    let r = renderer();
    let qr = qr();
    for (lang, _) in NAMES {
        for (_, name) in NAMES {
            let doses = doses(name, "Kerala");
            let out = r
                .render_with_report(&RenderRequest {
                    tenant: "default",
                    language: Some(lang),
                    doses: &doses,
                    current: 0,
                    qr: &qr,
                })
                .unwrap();
            assert_eq!(
                out.missing_glyphs, 0,
                "{name} on the {lang} certificate has .notdef glyphs"
            );
            assert!(out.pdf.starts_with(b"%PDF-1.7"));
        }
    }
}

#[test]
fn without_fallback_a_foreign_script_name_is_reported_missing() {
    let mut r = renderer();
    r.set_font_fallback(false);
    let qr = qr();
    let doses = doses("முத்துலட்சுமி", "Kerala");
    let out = r
        .render_with_report(&RenderRequest {
            tenant: "default",
            language: Some("en"),
            doses: &doses,
            current: 0,
            qr: &qr,
        })
        .unwrap();
    assert!(out.missing_glyphs > 0);
}

#[test]
fn output_is_deterministic_and_depends_on_input() {
    let r = renderer();
    let qr = qr();
    let a = doses("Ananya Kshatriya", "Kerala");
    let b = doses("Ananya Kshatriyaa", "Kerala");
    let req = |d| RenderRequest {
        tenant: "default",
        language: Some("en"),
        doses: d,
        current: 0,
        qr: &qr,
    };
    let first = r.render(&req(&a)).unwrap();
    let again = r.render(&req(&a)).unwrap();
    let other = r.render(&req(&b)).unwrap();
    assert_eq!(first, again);
    assert_ne!(first, other);
}

#[test]
fn hostile_text_renders_without_panicking_and_reports_missing_glyphs() {
    let r = renderer();
    let qr = qr();
    let nasty = "😀\u{0}\u{202E}\u{FFFF}\u{0301}क्\u{200D}ष\u{200C}ि محمد\u{0651}\u{0651}\u{0651} "
        .repeat(20);
    let doses = doses(&nasty, "Tamil Nadu");
    for lang in ["en", "ur", "ta"] {
        let out = r
            .render_with_report(&RenderRequest {
                tenant: "default",
                language: Some(lang),
                doses: &doses,
                current: 1,
                qr: &qr,
            })
            .unwrap();
        assert!(
            out.missing_glyphs > 0,
            "the emoji has no glyph in any font and must be reported"
        );
        assert!(out.pdf.ends_with(b"%%EOF\n"));
    }
}

#[test]
fn separately_loaded_renderers_write_identical_bytes() {
    // Two loads stand in for two processes: nothing may depend on hash or load order.
    let qr = qr();
    let doses = doses("सौम्या மீனா محمد", "Delhi");
    let req = RenderRequest {
        tenant: "default",
        language: None,
        doses: &doses,
        current: 0,
        qr: &qr,
    };
    let a = renderer().render(&req).unwrap();
    let b = renderer().render(&req).unwrap();
    assert_eq!(a, b);
}
