"""Parses an OpenMetrics exposition with the Prometheus project's own Python parser
(strict: one family per name, an # EOF, valid labels) and prints it as JSON."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

families = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    if family.name in families:
        sys.exit(f"duplicate family {family.name}")
    families[family.name] = {
        "type": family.type,
        "samples": [[sample.name, sample.labels, sample.value] for sample in family.samples],
    }
print(json.dumps(families))
