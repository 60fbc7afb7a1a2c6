//! A scrape of `GET /metrics`, parsed from the Prometheus text format as a
//! scraper reads it (label values may hold anything, braces and escaped
//! quotes included), and the sums tests compare before and after.

use std::collections::{BTreeMap, BTreeSet};

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of a scrape, and the metric families its `# TYPE` lines name.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    /// Family name → kind (`counter`, `gauge`, `histogram`, ...).
    pub families: BTreeMap<String, String>,
}

impl Scrape {
    /// Parses the text format; panics on a line that does not follow it.
    pub fn parse(text: &str) -> Self {
        let mut scrape = Self::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(typed) = line.strip_prefix("# TYPE ") {
                let (name, kind) = typed.split_once(' ').expect("# TYPE name kind");
                scrape.families.insert(name.into(), kind.into());
            } else if !line.starts_with('#') {
                scrape.samples.push(sample(line));
            }
        }
        scrape
    }

    /// The sum of the samples named `name` whose labels include `labels`
    /// (0 when there are none): a counter or gauge over the series asked.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// The samples named `name` whose labels include `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The families whose names start with `prefix`.
    pub fn family_names(&self, prefix: &str) -> BTreeSet<String> {
        self.families
            .keys()
            .filter(|name| name.starts_with(prefix))
            .cloned()
            .collect()
    }
}

fn sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("a sample line: {line}"));
    let name = line[..name_end].to_string();
    let (labels, rest) = if line[name_end..].starts_with('{') {
        labels(&line[name_end + 1..], line)
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    let value = rest.split_whitespace().next().unwrap_or_default();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("a sample value: {line}")),
    };
    Sample {
        name,
        labels,
        value,
    }
}

/// The labels after a sample's `{`, and what follows the closing `}`.
fn labels<'a>(mut rest: &'a str, line: &str) -> (BTreeMap<String, String>, &'a str) {
    let mut labels = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after);
        }
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("a label: {line}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("an escape: {line}"),
                },
                Some((_, c)) => value.push(c),
                None => panic!("a closing quote: {line}"),
            }
        };
        labels.insert(key.to_string(), value);
        rest = &after[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_with_braces_and_escapes() {
        let text = "# TYPE t_total counter\n\
            t_total{route=\"/a/{id}\",say=\"a \\\"b\\\" \\\\ c\"} 3\n\
            t_total 4\n\
            h_bucket{le=\"+Inf\"} 2\n";
        let scrape = Scrape::parse(text);
        assert_eq!(scrape.sum("t_total", &[("route", "/a/{id}")]), 3.0);
        assert_eq!(scrape.sum("t_total", &[]), 7.0);
        assert_eq!(scrape.samples[0].labels["say"], "a \"b\" \\ c");
        assert_eq!(scrape.sum("h_bucket", &[("le", "+Inf")]), 2.0);
        assert_eq!(scrape.families["t_total"], "counter");
    }
}
