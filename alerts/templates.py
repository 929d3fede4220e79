"""Go-template fragments for alert annotations, built from the query context.

Prometheus expands annotations with Go's text/template: `$labels`, `$value` and the `query`
function (which reads the same TSDB the rule does, in `promtool test rules` too). Label names come
from the config, and queries from the catalog, so nothing here names a metric.
"""

import re
from collections.abc import Callable

from pdobs import signals
from pdobs.core.context import Ctx, Variant

# Renders a PromQL query from a (scoped) context.
QueryBuilder = Callable[[Ctx], str]

# Stand-in label value, replaced by a printf verb once the catalog has rendered the selector.
_PLACEHOLDER = "__pd_alert_label_{}__"
_PLACEHOLDER_RE = re.compile(r'"__pd_alert_label_([a-z]+)__"')


def label(ctx: Ctx, key: str) -> str:
    """The value of a catalog label key ("namespace", "model", ...) on the alert."""
    return f"{{{{ $labels.{ctx.label(key)} }}}}"


def url_label(ctx: Ctx, key: str) -> str:
    return f"{{{{ $labels.{ctx.label(key)} | urlquery }}}}"


def value(fmt: str) -> str:
    """The alert's measured value through a Prometheus humanize function."""
    return f"{{{{ $value | {fmt} }}}}"


def where(ctx: Ctx) -> str:
    """'namespace X' or, when multi-cluster, 'namespace X of cluster Y'."""
    text = f"namespace {label(ctx, 'namespace')}"
    if ctx.cfg["multi_cluster"]:
        text += f" of cluster {label(ctx, 'cluster')}"
    return text


def if_infinite(then: str, otherwise: str) -> str:
    """Branch on $value being +Inf (a ratio over a zero denominator)."""
    return f"{{{{ if gt $value 1e300 }}}}{then}{{{{ else }}}}{otherwise}{{{{ end }}}}"


def if_positive(then: str, otherwise: str) -> str:
    """Branch on $value being above 0 (an alert whose `or` branches say which case holds)."""
    return f"{{{{ if gt $value 0.0 }}}}{then}{{{{ else }}}}{otherwise}{{{{ end }}}}"


def scoped_printf(ctx: Ctx, keys: tuple[str, ...], build: QueryBuilder) -> str:
    """`printf "<query>" $labels.a $labels.b` where the query is the catalog's, scoped to the
    alert's labels. `build(ctx)` renders the query with a context scoped by placeholders."""
    scope = {k: ("=", _PLACEHOLDER.format(k)) for k in ctx.keys(*keys)}
    text = build(ctx.scoped(**scope)).replace("%", "%%")
    args = [f"$labels.{ctx.label(m.group(1))}" for m in _PLACEHOLDER_RE.finditer(text)]
    missing = set(ctx.keys(*keys)) - set(_PLACEHOLDER_RE.findall(text))
    if missing:
        raise AssertionError(f"query does not filter by {sorted(missing)}: {text}")
    text = _PLACEHOLDER_RE.sub("%q", text)
    if "`" in text:
        raise AssertionError(f"a backtick cannot go into a raw template string: {text}")
    one_line = re.sub(r"\s*\n\s*", " ", text).strip()
    return f"printf `{one_line}` " + " ".join(args)


def query_value(ctx: Ctx, keys: tuple[str, ...], signal: str, variant: Variant, fmt: str,
                missing: str = "n/a") -> str:
    """The current value of a recorded signal for the alert's labels, humanized."""
    pipeline = scoped_printf(ctx, keys, lambda c: signals.query(c, signal, **variant))
    return (f"{{{{ with {pipeline} | query }}}}{{{{ . | first | value | {fmt} }}}}"
            f"{{{{ else }}}}{missing}{{{{ end }}}}")


def when_positive(ctx: Ctx, keys: tuple[str, ...], signal: str, variant: Variant, text: str, fmt: str) -> str:
    """`text` (its `{}` the value through `fmt`) when a recorded signal is above 0 for the alert's
    labels, else nothing: a sentence only the alerts it explains carry."""
    pipeline = scoped_printf(ctx, keys, lambda c: signals.query(c, signal, **variant))
    shown = text.replace("{}", f"{{{{ $v | {fmt} }}}}")
    return (f"{{{{ with {pipeline} | query }}}}{{{{ $v := . | first | value }}}}"
            f"{{{{ if gt $v 0.0 }}}}{shown}{{{{ end }}}}{{{{ end }}}}")


def query_list(ctx: Ctx, keys: tuple[str, ...], build: QueryBuilder, label_name: str,
               names: dict[str, str], sep: str = "; ") -> str:
    """For the series a query returns for the alert's labels: the text in `names` of each one's
    `label_name` value, in the order of `names`, joined by `sep`."""
    pipeline = scoped_printf(ctx, keys, build)
    out = f'{{{{ $found := {pipeline} | query }}}}{{{{ $sep := "" }}}}'
    for key, text in names.items():
        out += (f"{{{{ range $found }}}}{{{{ if eq .Labels.{label_name} {_go_string(key)} }}}}"
                f"{{{{ $sep }}}}{text}{{{{ $sep = {_go_string(sep)} }}}}{{{{ end }}}}{{{{ end }}}}")
    return out


def _go_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
