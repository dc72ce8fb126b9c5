//! `prunelab info`: per-layer and total parameters and MACs of a model, and its
//! coupled groups.

use prunelab::base::error::{Error, Result};
use prunelab::metrics::count::count;
use prunelab::model::spec::ModelSpec;
use prunelab::model::zoo::ModelOptions;
use prunelab::report::count_table;

use crate::cli::InfoArgs;
use crate::setup::parse;

pub fn info(args: InfoArgs) -> Result<()> {
    let point_model = prunelab::model::zoo::POINT_MODELS.contains(&args.model.as_str());
    if let (Some(hidden), false) = (&args.hidden, point_model) {
        return Err(Error::config(
            "hidden",
            format!("{hidden:?}"),
            format!(
                "{} has fixed widths; --hidden is for {}",
                args.model,
                prunelab::model::zoo::POINT_MODELS.join(" and ")
            ),
        ));
    }
    let spec = ModelSpec::named(
        &args.model,
        &ModelOptions {
            classes: args.classes,
            hidden: args.hidden.clone().unwrap_or_else(|| vec![16, 16]),
            shortcut: parse("shortcut", &args.shortcut)?,
            ..ModelOptions::default()
        },
    )?;
    let counted = count(&spec);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&counted).expect("plain data")
        );
    } else {
        print!("{}", count_table(&counted));
        print!("{}", groups_table(&spec));
    }
    Ok(())
}

/// The units that are cut together: every prunable group, its size, the
/// layers it is the output of and the layers that read it (`ignore_layers`
/// and `layer_ratios` take these names; the streams are cut with
/// `residual_stream = true`).
fn groups_table(spec: &ModelSpec) -> String {
    let list = |names: &[String]| match names {
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} +{} more", rest.len()),
        [] => "-".into(),
    };
    let mut out = format!(
        "\n{:<28} {:>6}  {:<36} read by\n",
        "group (cut together)", "units", "output of"
    );
    for g in spec.groups(true) {
        out.push_str(&format!(
            "{:<28} {:>6}  {:<36} {}\n",
            g.name,
            g.size,
            list(&g.producers),
            list(&g.consumers)
        ));
    }
    out
}
