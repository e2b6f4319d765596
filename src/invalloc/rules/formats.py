"""Rule table files: CSV, JSON (with a JSON Schema) and DMN 1.3 XML, all from one :class:`RuleTable`.

Every reader is plain parsing — ``csv``, ``json``, ``xml.etree`` and a small parser of FEEL
*simple unary tests* — so loading a table never executes anything from the file.

CSV (``rules.csv``)
    One row per rule: ``rule_id``, one column per feature holding a FEEL unary test
    (``-``, ``< 10``, ``>= 20``, ``[0..10)``), one column per output (a number), ``support``.
    The header names the columns; ``in.``/``out.`` prefixes tell features from outputs.

JSON (``rules.json``, schema ``rules.schema.json``)
    ``features`` and ``outputs`` with units and descriptions, and ``rules`` with ``id``,
    ``support``, ``when`` (per feature ``min`` inclusive / ``max`` exclusive, null = none)
    and ``then`` (per output a number).

DMN 1.3 (``rules.dmn``, namespace :data:`DMN_NAMESPACE`)
    One ``decision`` holding one ``decisionTable`` with ``hitPolicy="UNIQUE"``: an input
    per feature (FEEL unary tests), the output ``rule_id`` (string) and one number output per
    table output. Loads in standard DMN engines. The reader accepts hand-written tables with
    any of ``-``, ``< a``, ``<= a``, ``> a``, ``>= a``, ``= a``, ``a``, and ranges with open
    or closed ends (``[a..b]``, ``(a..b)``, ``]a..b[`` …). A DMNDI diagram (``dmndi:DMNDI``)
    draws each input as an ``inputData`` shape wired to the decision, so that editors show the
    decision requirements diagram.

Numbers are written as the shortest decimal that reads back to the same float
(:func:`~invalloc.rules.table.number_text`); values rounded to their stated precision
therefore appear as ``0.95``, never ``0.9500000000000001``.

XLSX (:func:`write_xlsx`, ``invalloc rules show --xlsx``)
    A reviewer's workbook (openpyxl): a summary sheet, the conditions, one sheet per output
    group. A view of a verified table, not one of its files.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np

from invalloc.env.feature_definitions import Feature
from invalloc.rules.table import Output, RuleTable, RuleTableError, anchor_label, condition_text, number_text

DMN_NAMESPACE = "https://www.omg.org/spec/DMN/20191111/MODEL/"
#: Namespaces of DMN 1.1–1.5 that the reader accepts (hand-written tables may use any).
DMN_NAMESPACES = (
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    DMN_NAMESPACE,
    "https://www.omg.org/spec/DMN/20211108/MODEL/",
    "https://www.omg.org/spec/DMN/20230324/MODEL/",
)
#: DMN 1.3 diagram interchange (DMNDI) and the OMG DC/DI namespaces it uses.
DMNDI_NAMESPACE = "https://www.omg.org/spec/DMN/20191111/DMNDI/"
DC_NAMESPACE = "http://www.omg.org/spec/DMN/20180521/DC/"
DI_NAMESPACE = "http://www.omg.org/spec/DMN/20180521/DI/"
#: Shape sizes and gaps of the decision requirements diagram (DRD), in DI units (pixels).
INPUT_SHAPE = (220, 45)
DECISION_SHAPE = (240, 80)
SHAPE_GAP = (20, 140)
FORMAT = "invalloc-rule-table"
FORMAT_VERSION = 1
FILE_NAMES = {"csv": "rules.csv", "json": "rules.json", "dmn": "rules.dmn"}
SCHEMA_FILE = "rules.schema.json"
#: Table metadata carried by the JSON document.
METADATA_KEYS = ("name", "scenario", "scenario_digest", "feature_set_version")

_NUMBER = r"-?(?:\d+(?:\.\d*)?|\.\d+)"
_RANGE = re.compile(rf"^([\[\](])\s*({_NUMBER})\s*\.\.\s*({_NUMBER})\s*([\])\[])$")
_COMPARISON = re.compile(rf"^(<=|>=|<|>|=)?\s*({_NUMBER})$")


def parse_unary_test(text: str, where: str) -> tuple[float, float]:
    """Half-open bounds ``[lower, upper)`` of a FEEL simple unary test on a number.

    Closed upper ends and open lower ends are moved to the next float, which is exact for
    float64 inputs. Raises :class:`RuleTableError` naming ``where`` for anything else
    (disjunctions, ``not(...)``, strings, expressions).
    """
    test = text.strip()
    if test in ("-", ""):
        return -np.inf, np.inf
    match = _RANGE.match(test)
    if match:
        opening, a, b, closing = match.groups()
        lower = float(a) if opening == "[" else np.nextafter(float(a), np.inf)
        upper = float(b) if closing in (")", "[") else np.nextafter(float(b), np.inf)
        return float(lower), float(upper)
    match = _COMPARISON.match(test)
    if match:
        operator, number = match.groups()
        value = float(number)
        if operator == "<":
            return -np.inf, value
        if operator == "<=":
            return -np.inf, float(np.nextafter(value, np.inf))
        if operator == ">":
            return float(np.nextafter(value, np.inf)), np.inf
        if operator == ">=":
            return value, np.inf
        return value, float(np.nextafter(value, np.inf))
    raise RuleTableError(f"{where}: unsupported FEEL unary test {text!r} (use -, <, <=, >, >=, or [a..b) ranges)")


def _number(text: str, where: str) -> float:
    try:
        value = float(text.strip().strip('"'))
    except ValueError:
        raise RuleTableError(f"{where}: {text!r} is not a number") from None
    return value


# ---------------------------------------------------------------------------------- CSV
def write_csv(table: RuleTable, path: Path) -> None:
    """Write ``table`` as CSV (see the module docstring)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["rule_id", *(f"in.{n}" for n in table.feature_names), *(f"out.{n}" for n in table.output_names), "support"]
    )
    for r, rid in enumerate(table.rule_ids):
        writer.writerow(
            [
                rid,
                *(condition_text(table.lower[r, f], table.upper[r, f]) for f in range(len(table.features))),
                *(number_text(v) for v in table.values[r]),
                number_text(table.support[r]),
            ]
        )
    Path(path).write_text(buffer.getvalue())


def read_csv(path: Path, features: list[Feature] | None = None, outputs: list[Output] | None = None) -> RuleTable:
    """Read a CSV rule table; ``features``/``outputs`` (e.g. from the manifest) add units and actions."""
    path = Path(path)
    try:
        rows = list(csv.reader(io.StringIO(path.read_text())))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RuleTableError(f"{path}: cannot be read ({error})") from None
    if not rows or not rows[0] or rows[0][0] != "rule_id" or rows[0][-1] != "support":
        raise RuleTableError(f"{path}: expected a header rule_id, in.<feature>…, out.<output>…, support")
    header = rows[0]
    inputs = [h.removeprefix("in.") for h in header[1:-1] if h.startswith("in.")]
    outs = [h.removeprefix("out.") for h in header[1:-1] if h.startswith("out.")]
    if len(inputs) + len(outs) != len(header) - 2 or header[1 : 1 + len(inputs)] != [f"in.{n}" for n in inputs]:
        raise RuleTableError(f"{path}: header columns must be rule_id, in.<feature>…, out.<output>…, support")
    n_in = len(inputs)
    lower, upper, values, support, ids = [], [], [], [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise RuleTableError(f"{path}:{line}: {len(row)} fields, expected {len(header)}")
        bounds = [parse_unary_test(cell, f"{path}:{line}") for cell in row[1 : 1 + n_in]]
        lower.append([b[0] for b in bounds])
        upper.append([b[1] for b in bounds])
        values.append([_number(cell, f"{path}:{line}") for cell in row[1 + n_in : -1]])
        support.append(_number(row[-1], f"{path}:{line}"))
        ids.append(row[0].strip())
    return _assemble(path, inputs, outs, lower, upper, values, support, ids, features, outputs, {})


def _assemble(
    path: Path,
    input_names: list[str],
    output_names: list[str],
    lower: list,
    upper: list,
    values: list,
    support: list,
    ids: list[str],
    features: list[Feature] | None,
    outputs: list[Output] | None,
    metadata: dict,
) -> RuleTable:
    """A checked :class:`RuleTable`; definitions given by the caller must match the file's names."""
    if features is not None and [f.name for f in features] != input_names:
        expected = [f.name for f in features]
        raise RuleTableError(f"{path}: inputs {input_names} differ from the expected features {expected}")
    if outputs is not None and [o.name for o in outputs] != output_names:
        raise RuleTableError(f"{path}: outputs {output_names} differ from the expected {[o.name for o in outputs]}")
    n_in, n_out = len(input_names), len(output_names)
    table = RuleTable(
        features=features or [Feature(n, "", "") for n in input_names],
        outputs=outputs or [Output(n, "", "", "", "log2") for n in output_names],
        lower=np.array(lower, dtype=float).reshape(len(ids), n_in),
        upper=np.array(upper, dtype=float).reshape(len(ids), n_in),
        values=np.array(values, dtype=float).reshape(len(ids), n_out),
        support=np.array(support, dtype=float).reshape(len(ids)),
        rule_ids=ids,
        metadata=metadata,
    )
    table.check(str(path))
    return table


# ---------------------------------------------------------------------------------- JSON
def _json_number(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def describe_features(table: RuleTable) -> list[dict[str, str]]:
    """Name, unit and description of each input feature (JSON documents and manifests)."""
    return [{"name": f.name, "unit": f.unit, "description": f.description} for f in table.features]


def describe_outputs(table: RuleTable) -> list[dict[str, object]]:
    """Name, unit, description and action mapping of each output (JSON documents and manifests)."""
    return [
        {
            "name": o.name,
            "unit": o.unit,
            "description": o.description,
            "action": o.action,
            "transform": o.transform,
            "step": o.step,
        }
        for o in table.outputs
    ]


def table_document(table: RuleTable) -> dict:
    """The JSON document of ``table`` (see :func:`json_schema`)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hit_policy": "UNIQUE",
        **{k: table.metadata[k] for k in METADATA_KEYS if k in table.metadata},
        "features": describe_features(table),
        "outputs": describe_outputs(table),
        "rules": [
            {
                "id": rid,
                "support": float(table.support[r]),
                "when": {
                    f.name: {"min": _json_number(table.lower[r, j]), "max": _json_number(table.upper[r, j])}
                    for j, f in enumerate(table.features)
                },
                "then": {o.name: float(table.values[r, j]) for j, o in enumerate(table.outputs)},
            }
            for r, rid in enumerate(table.rule_ids)
        ],
    }


def write_json(table: RuleTable, path: Path) -> None:
    Path(path).write_text(json.dumps(table_document(table), indent=2) + "\n")


def read_json(path: Path) -> RuleTable:
    """Read a JSON rule table (structure checked against the schema's rules by hand)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RuleTableError(f"{path}: not valid JSON ({error})") from None
    except RecursionError:
        raise RuleTableError(f"{path}: not valid JSON (nested too deeply)") from None
    where = str(path)
    try:
        if document.get("format") != FORMAT or document.get("format_version") != FORMAT_VERSION:
            raise RuleTableError(f"{where}: not an {FORMAT} document of version {FORMAT_VERSION}")
        if document.get("hit_policy", "UNIQUE") != "UNIQUE":
            raise RuleTableError(f"{where}: hit_policy must be UNIQUE")
        features = [Feature(str(f["name"]), str(f["unit"]), str(f["description"])) for f in document["features"]]
        outputs = []
        for o in document["outputs"]:
            if o["transform"] not in ("log2", "half_ln"):
                raise RuleTableError(f"{where}: output {o['name']} has unknown transform {o['transform']!r}")
            output = Output(str(o["name"]), str(o["unit"]), str(o["description"]), str(o["action"]), o["transform"])
            outputs.append(replace(output, step=float(o["step"])))
        lower, upper, values, support, ids = [], [], [], [], []
        for rule in document["rules"]:
            if not isinstance(rule, dict) or not isinstance(rule.get("id"), str):
                raise RuleTableError(f"{where}: every rule must be an object with a string id")
            rid = rule["id"]
            when, then = rule["when"], rule["then"]
            if set(when) != {f.name for f in features} or set(then) != {o.name for o in outputs}:
                raise RuleTableError(f"{where}: rule {rid} must give every feature and every output")
            lo = [when[f.name]["min"] for f in features]
            hi = [when[f.name]["max"] for f in features]
            lower.append([-np.inf if v is None else float(v) for v in lo])
            upper.append([np.inf if v is None else float(v) for v in hi])
            values.append([float(then[o.name]) for o in outputs])
            support.append(float(rule["support"]))
            ids.append(rid)
        metadata = {k: document[k] for k in METADATA_KEYS if k in document}
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, RuleTableError):
            raise
        raise RuleTableError(f"{where}: malformed rule table ({type(error).__name__}: {error})") from None
    return _assemble(
        path,
        [f.name for f in features],
        [o.name for o in outputs],
        lower,
        upper,
        values,
        support,
        ids,
        features,
        outputs,
        metadata,
    )


def json_schema() -> dict:
    """JSON Schema (draft 2020-12) of ``rules.json``."""
    bound = {"type": ["number", "null"]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://invalloc.example/schemas/rule-table-1.json",
        "title": "invalloc rule table",
        "description": (
            "Rules over named features; a rule matches when min <= value < max for every feature "
            "(null = unbounded). Exactly one rule matches any input (hit policy UNIQUE)."
        ),
        "type": "object",
        "required": ["format", "format_version", "hit_policy", "features", "outputs", "rules"],
        "properties": {
            "format": {"const": FORMAT},
            "format_version": {"const": FORMAT_VERSION},
            "hit_policy": {"const": "UNIQUE"},
            "name": {"type": "string"},
            "scenario": {"type": "string"},
            "scenario_digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "feature_set_version": {"type": "string"},
            "features": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name", "unit", "description"],
                    "properties": {
                        "name": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
                        "unit": {"type": "string"},
                        "description": {"type": "string"},
                    },
                    "additionalProperties": False,
                },
            },
            "outputs": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name", "unit", "description", "action", "transform", "step"],
                    "properties": {
                        "name": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
                        "unit": {"type": "string"},
                        "description": {"type": "string"},
                        "action": {"type": "string"},
                        "transform": {"enum": ["log2", "half_ln"]},
                        "step": {"type": "number", "minimum": 0},
                    },
                    "additionalProperties": False,
                },
            },
            "rules": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["id", "support", "when", "then"],
                    "properties": {
                        "id": {"type": "string", "minLength": 1},
                        "support": {"type": "number", "minimum": 0, "maximum": 1},
                        "when": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "required": ["min", "max"],
                                "properties": {"min": bound, "max": bound},
                                "additionalProperties": False,
                            },
                        },
                        "then": {"type": "object", "additionalProperties": {"type": "number"}},
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    }


def write_schema(path: Path) -> None:
    Path(path).write_text(json.dumps(json_schema(), indent=2) + "\n")


# ---------------------------------------------------------------------------------- DMN
def write_dmn(table: RuleTable, path: Path) -> None:
    """Write ``table`` as a DMN 1.3 decision table (hit policy UNIQUE)."""
    ET.register_namespace("", DMN_NAMESPACE)
    q = f"{{{DMN_NAMESPACE}}}"
    name = str(table.metadata.get("name", "rule_table"))
    root = ET.Element(
        f"{q}definitions",
        {"id": "definitions", "name": name, "namespace": "https://invalloc.example/rules"},
    )
    for j, feature in enumerate(table.features):
        data = ET.SubElement(root, f"{q}inputData", {"id": f"input_data_{j}", "name": feature.name})
        ET.SubElement(data, f"{q}description").text = f"{feature.description} ({feature.unit})"
        ET.SubElement(data, f"{q}variable", {"id": f"variable_{j}", "name": feature.name, "typeRef": "number"})
    decision = ET.SubElement(root, f"{q}decision", {"id": "allocation_policy", "name": "allocation_policy"})
    scenario, version = table.metadata.get("scenario", ""), table.metadata.get("feature_set_version", "")
    anchored = ""
    if table.metadata.get("action_mode") == "anchored":
        rule = anchor_label(table.metadata.get("anchor"))
        anchored = f" Outputs multiply the order-up-to levels and channel weights of the rule {rule}."
    ET.SubElement(decision, f"{q}description").text = (
        f"Allocation policy rule table for scenario {scenario}; feature set {version}. "
        "A rule matches when every input lies in its range." + anchored
    )
    for j in range(len(table.features)):
        requirement = ET.SubElement(decision, f"{q}informationRequirement", {"id": f"requirement_{j}"})
        ET.SubElement(requirement, f"{q}requiredInput", {"href": f"#input_data_{j}"})
    decision_table = ET.SubElement(decision, f"{q}decisionTable", {"id": "rule_table", "hitPolicy": "UNIQUE"})
    for j, feature in enumerate(table.features):
        column = ET.SubElement(decision_table, f"{q}input", {"id": f"input_{j}", "label": feature.name})
        expression = ET.SubElement(column, f"{q}inputExpression", {"id": f"input_expression_{j}", "typeRef": "number"})
        ET.SubElement(expression, f"{q}text").text = feature.name
    ET.SubElement(decision_table, f"{q}output", {"id": "output_rule_id", "name": "rule_id", "typeRef": "string"})
    for j, output in enumerate(table.outputs):
        ET.SubElement(decision_table, f"{q}output", {"id": f"output_{j}", "name": output.name, "typeRef": "number"})
    for r, rid in enumerate(table.rule_ids):
        rule = ET.SubElement(decision_table, f"{q}rule", {"id": f"rule_{rid}"})
        ET.SubElement(rule, f"{q}description").text = f"support={number_text(table.support[r])}"
        for j in range(len(table.features)):
            entry = ET.SubElement(rule, f"{q}inputEntry", {"id": f"rule_{rid}_in_{j}"})
            ET.SubElement(entry, f"{q}text").text = condition_text(table.lower[r, j], table.upper[r, j])
        entry = ET.SubElement(rule, f"{q}outputEntry", {"id": f"rule_{rid}_out_id"})
        ET.SubElement(entry, f"{q}text").text = f'"{rid}"'
        for j in range(len(table.outputs)):
            entry = ET.SubElement(rule, f"{q}outputEntry", {"id": f"rule_{rid}_out_{j}"})
            ET.SubElement(entry, f"{q}text").text = number_text(table.values[r, j])
    _write_diagram(root, table)
    ET.indent(root)
    Path(path).write_bytes(ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n")


def _write_diagram(root: ET.Element, table: RuleTable) -> None:
    """DMNDI: a shape per input and for the decision, an edge per information requirement.

    The inputs stand in a row above the decision and a row below it (one row below when
    there are few), so no edge crosses a shape; dmn-js, Camunda Modeler and other editors
    draw the decision requirements diagram from it.
    """
    for prefix, namespace in (("dmndi", DMNDI_NAMESPACE), ("dc", DC_NAMESPACE), ("di", DI_NAMESPACE)):
        ET.register_namespace(prefix, namespace)
    dmndi, dc, di = (f"{{{n}}}" for n in (DMNDI_NAMESPACE, DC_NAMESPACE, DI_NAMESPACE))
    (width, height), (decision_width, decision_height), (gap_x, gap_y) = INPUT_SHAPE, DECISION_SHAPE, SHAPE_GAP
    n = len(table.features)
    above = n // 2 if n > 8 else 0
    rows = [list(range(above)), list(range(above, n))]
    row_width = max(len(row) for row in rows) * (width + gap_x) - gap_x
    decision_x = max(row_width, decision_width) / 2 - decision_width / 2
    decision_y = (height + gap_y) if above else 0
    below_y = decision_y + decision_height + gap_y
    diagram = ET.SubElement(ET.SubElement(root, f"{dmndi}DMNDI"), f"{dmndi}DMNDiagram", {"id": "drd", "name": "DRD"})

    def shape(element: str, x: float, y: float, w: float, h: float) -> None:
        node = ET.SubElement(diagram, f"{dmndi}DMNShape", {"id": f"shape_{element}", "dmnElementRef": element})
        ET.SubElement(
            node, f"{dc}Bounds", {"x": _coordinate(x), "y": _coordinate(y), "width": str(w), "height": str(h)}
        )

    shape("allocation_policy", decision_x, decision_y, decision_width, decision_height)
    for row, y in zip(rows, (0, below_y), strict=True):
        offset = (max(row_width, decision_width) - (len(row) * (width + gap_x) - gap_x)) / 2
        for position, j in enumerate(row):
            x = offset + position * (width + gap_x)
            shape(f"input_data_{j}", x, y, width, height)
            start = (x + width / 2, y + height if y == 0 else y)
            end = (decision_x + decision_width / 2, decision_y if y == 0 else decision_y + decision_height)
            edge = ET.SubElement(
                diagram, f"{dmndi}DMNEdge", {"id": f"edge_requirement_{j}", "dmnElementRef": f"requirement_{j}"}
            )
            for px, py in (start, end):
                ET.SubElement(edge, f"{di}waypoint", {"x": _coordinate(px), "y": _coordinate(py)})


def _coordinate(value: float) -> str:
    """A diagram coordinate without a trailing ``.0``."""
    return number_text(round(value, 1))


def read_dmn(path: Path, features: list[Feature] | None = None, outputs: list[Output] | None = None) -> RuleTable:
    """Read the first decision table of a DMN file (hit policy UNIQUE, number inputs).

    The ``rule_id`` output (a string) names the rules; without one they are numbered
    ``rule_1`` …; a rule's ``description`` ``support=x`` gives its support (else 0).
    """
    path = Path(path)
    try:
        text = path.read_bytes()
        if b"<!ENTITY" in text or b"<!DOCTYPE" in text:
            # No document type or entities: nothing in a decision table needs them.
            raise RuleTableError(f"{path}: DOCTYPE/ENTITY declarations are not accepted")
        root = ET.fromstring(text)
    except (OSError, ET.ParseError) as error:
        raise RuleTableError(f"{path}: not valid XML ({error})") from None
    namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    if namespace not in DMN_NAMESPACES or root.tag != f"{{{namespace}}}definitions":
        raise RuleTableError(f"{path}: not a DMN definitions document (namespace {namespace or 'none'})")
    q = f"{{{namespace}}}"
    table_element = root.find(f".//{q}decisionTable")
    if table_element is None:
        raise RuleTableError(f"{path}: no decisionTable")
    if table_element.get("hitPolicy", "UNIQUE") != "UNIQUE":
        raise RuleTableError(f"{path}: hitPolicy {table_element.get('hitPolicy')} (only UNIQUE is accepted)")
    input_names = []
    for column in table_element.findall(f"{q}input"):
        expression = column.find(f"{q}inputExpression/{q}text")
        name = (expression.text or "").strip() if expression is not None else ""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise RuleTableError(f"{path}: input expression {name!r} is not a plain variable name")
        input_names.append(name)
    output_columns = [o.get("name", "") for o in table_element.findall(f"{q}output")]
    id_column = output_columns.index("rule_id") if "rule_id" in output_columns else None
    output_names = [n for k, n in enumerate(output_columns) if k != id_column]
    lower, upper, values, support, ids = [], [], [], [], []
    for number, rule in enumerate(table_element.findall(f"{q}rule"), start=1):
        where = f"{path}: rule {number}"
        inputs = [(e.findtext(f"{q}text") or "") for e in rule.findall(f"{q}inputEntry")]
        outs = [(e.findtext(f"{q}text") or "").strip() for e in rule.findall(f"{q}outputEntry")]
        if len(inputs) != len(input_names) or len(outs) != len(output_columns):
            raise RuleTableError(
                f"{where}: {len(inputs)} input and {len(outs)} output entries, expected "
                f"{len(input_names)} and {len(output_columns)}"
            )
        bounds = [parse_unary_test(t, where) for t in inputs]
        lower.append([b[0] for b in bounds])
        upper.append([b[1] for b in bounds])
        values.append([_number(t, where) for k, t in enumerate(outs) if k != id_column])
        ids.append(outs[id_column].strip('"') if id_column is not None else f"rule_{number}")
        match = re.search(rf"support\s*=\s*({_NUMBER})", rule.findtext(f"{q}description") or "")
        support.append(float(match.group(1)) if match else 0.0)
    return _assemble(path, input_names, output_names, lower, upper, values, support, ids, features, outputs, {})


# ---------------------------------------------------------------------------------- XLSX
#: Characters a worksheet title may not hold, and its longest length.
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_SHEET_TITLE_LENGTH = 31


def write_xlsx(table: RuleTable, summary: list[tuple[str, object]], path: Path) -> list[str]:
    """Write a reviewer's workbook of ``table`` (openpyxl): the sheet ``summary`` (``summary``'s
    label–value rows: fidelity, KPI retention, anchor, scenario, content digest …), the sheet
    ``conditions`` (per rule its support and FEEL condition on every feature), then one sheet
    per output group (:func:`~invalloc.rules.table.output_groups`): per rule its id, support,
    conditions in words and one column per output, holding exactly the JSON's values.

    The workbook is a view for review, written from a verified table; it is not one of the
    table's files (nothing reads a table back from it). Returns the sheet titles.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    from invalloc.rules.table import output_groups

    bold = Font(bold=True)
    book = Workbook()
    sheet = book.active
    sheet.title = "summary"
    for label, value in summary:
        sheet.append([label, value])
        sheet.cell(sheet.max_row, 1).font = bold
    sheet.column_dimensions["A"].width = 34
    sheet.column_dimensions["B"].width = 72
    conditions = book.create_sheet("conditions")
    conditions.append(["rule_id", "support", *table.feature_names])
    for r, rid in enumerate(table.rule_ids):
        cells = [condition_text(table.lower[r, j], table.upper[r, j]) for j in range(len(table.features))]
        conditions.append([rid, float(table.support[r]), *cells])
    _header(conditions, bold)
    titles = {"summary", "conditions"}
    for group, members in output_groups(table.outputs).items():
        title = _sheet_title(group, titles)
        titles.add(title)
        values = book.create_sheet(title)
        values.append(["rule_id", "support", "when (all hold)", *(table.outputs[k].name for k in members)])
        for r, rid in enumerate(table.rule_ids):
            when = "; ".join(
                f"{feature.name} {condition_text(table.lower[r, j], table.upper[r, j])}"
                for j, feature in enumerate(table.features)
                if np.isfinite(table.lower[r, j]) or np.isfinite(table.upper[r, j])
            )
            values.append(
                [rid, float(table.support[r]), when or "(always)", *(float(table.values[r, k]) for k in members)]
            )
        _header(values, bold)
        values.column_dimensions["C"].width = 60
        for row in values.iter_rows(min_row=2, min_col=3, max_col=3):
            row[0].alignment = Alignment(wrap_text=True, vertical="top")
    from invalloc.workbooks import save_workbook

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_workbook(book, path)  # written beside the target, then moved into place
    return book.sheetnames


def _header(sheet, bold) -> None:
    for cell in sheet[1]:
        cell.font = bold
    sheet.freeze_panes = "B2"


def _sheet_title(name: str, taken: set[str]) -> str:
    """A worksheet title for ``name``: allowed characters, at most 31 long, not yet ``taken``."""
    title = _SHEET_FORBIDDEN.sub("_", name)[:_SHEET_TITLE_LENGTH] or "outputs"
    number = 2
    while title in taken:
        suffix = f"_{number}"
        title = title[: _SHEET_TITLE_LENGTH - len(suffix)] + suffix
        number += 1
    return title
