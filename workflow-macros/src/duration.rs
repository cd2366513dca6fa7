//! Durations in attributes: `"100ms"`, `"30s"`, `"1.5m"`, checked while
//! expanding so a typo is a compile error on the literal.

use std::time::Duration;

use syn::LitStr;

const UNITS: [(&str, f64); 6] = [
    ("ns", 1e-9),
    ("us", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
];

/// Parses a positive duration; the error names what was wrong.
pub(crate) fn parse(lit: &LitStr) -> syn::Result<Duration> {
    let text = lit.value();
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim();
    let scale = UNITS.iter().find(|(u, _)| *u == unit).map(|(_, s)| *s);
    let (Ok(number), Some(scale)) = (number.parse::<f64>(), scale) else {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`{text}` is not a duration: write a number and a unit, like \"100ms\", \"30s\" or \"5m\" \
                 (units: ns, us, ms, s, m, h)"
            ),
        ));
    };
    let duration = Duration::try_from_secs_f64(number * scale).unwrap_or(Duration::MAX);
    if duration.is_zero() {
        return Err(syn::Error::new(
            lit.span(),
            "the duration must be more than zero",
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> LitStr {
        LitStr::new(s, proc_macro2::Span::call_site())
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse(&lit("100ms")).unwrap(), Duration::from_millis(100));
        assert_eq!(parse(&lit("30s")).unwrap(), Duration::from_secs(30));
        assert_eq!(parse(&lit("1.5m")).unwrap(), Duration::from_secs(90));
        assert_eq!(parse(&lit(" 2 h ")).unwrap(), Duration::from_secs(7200));
        assert_eq!(parse(&lit("250us")).unwrap(), Duration::from_micros(250));
    }

    #[test]
    fn bad_durations_are_errors() {
        for bad in ["", "30", "ms", "3 sec", "0s", "0.0ms", "-1s", "1..2s"] {
            assert!(parse(&lit(bad)).is_err(), "{bad:?} should not parse");
        }
    }
}
