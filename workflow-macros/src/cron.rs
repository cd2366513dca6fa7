//! Cron schedules in attributes: `cron = "0 */5 * * * *"` and
//! `zone = "Europe/Paris"`, checked while expanding with the crates the
//! runtime reads them with, so a typo is a compile error on the literal.

use std::str::FromStr;

use syn::LitStr;

/// Checks that `cron` parses, fires at least once more, and that `zone`
/// is an IANA time zone.
pub(crate) fn check(cron: &LitStr, zone: Option<&LitStr>) -> syn::Result<()> {
    let expression = cron.value();
    let error = |reason: String| {
        syn::Error::new(
            cron.span(),
            format!("cron expression \"{expression}\": {reason}"),
        )
    };
    let fields = expression.split_whitespace().count();
    if !expression.trim_start().starts_with('@') && !(6..=7).contains(&fields) {
        return Err(error(format!(
            "{fields} fields; expected 6 or 7, seconds first: \
             sec min hour day-of-month month day-of-week [year] \
             (\"0 */5 * * * *\" is every five minutes)"
        )));
    }
    let schedule = cron::Schedule::from_str(&expression).map_err(|e| {
        // The crate's message repeats the expression and points at a
        // column; its last line says what is wrong.
        let text = e.to_string();
        let reason = text
            .lines()
            .map(str::trim)
            .rfind(|line| !line.is_empty() && !line.starts_with('^') && *line != expression.trim())
            .unwrap_or("it does not parse")
            .to_owned();
        error(reason)
    })?;
    if schedule
        .after(&chrono::DateTime::UNIX_EPOCH)
        .next()
        .is_none()
    {
        return Err(error("it matches no time".to_owned()));
    }
    if let Some(zone) = zone
        && zone.value().parse::<chrono_tz::Tz>().is_err()
    {
        return Err(syn::Error::new(
            zone.span(),
            format!(
                "unknown time zone \"{}\": expected an IANA name such as \"Europe/Paris\"",
                zone.value()
            ),
        ));
    }
    Ok(())
}
