"""Checks real API responses against the schemas the OpenAPI document declares for them.

Reads the document's path and a JSON list of responses on stdin:
[{"method": "GET", "path": "/api/v1/alerts/{id}", "status": 200, "body": {...}}, ...]
For each, the declared response (by status, else "default") must exist, and a JSON body
must validate against its schema. Prints one line per problem; exits 1 if any.
"""

import json
import sys

import jsonschema_rs


def main() -> int:
    with open(sys.argv[1]) as handle:
        document = json.load(handle)
    problems = []
    checked = 0
    for response in json.load(sys.stdin):
        where = f"{response['method']} {response['path']} -> {response['status']}"
        operation = document["paths"][response["path"]][response["method"].lower()]
        declared = operation["responses"].get(str(response["status"])) or operation["responses"].get("default")
        if declared is None:
            problems.append(f"{where}: status not documented")
            continue
        body = response.get("body")
        content = declared.get("content", {}).get("application/json")
        if body is None or content is None:
            continue
        schema = dict(content["schema"])
        schema["components"] = document["components"]
        validator = jsonschema_rs.Draft202012Validator(schema)
        errors = [f"{error.message} at {list(error.instance_path)}" for error in validator.iter_errors(body)]
        if errors:
            problems.append(f"{where}: " + "; ".join(errors[:3]))
        checked += 1
    for problem in problems:
        print(problem)
    print(f"checked {checked} JSON bodies", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
