"""docs/support-matrix.md is what tools/support_matrix.py makes of the committed contract."""

from __future__ import annotations

import yaml

from tools import support_matrix as M
from tools.contract import load


def test_support_matrix_is_up_to_date():
    assert M.OUT.read_text(encoding="utf-8") == M.render(), "run python tools/support_matrix.py"


def test_every_row_names_metrics_the_contract_knows():
    spec = yaml.safe_load(M.ROWS.read_text(encoding="utf-8"))
    vllm_names = {m["name"] for v in load.vllm_versions() for m in load.vllm(v)["metrics"]}
    epp_names = {m["name"] for k in load.epp_keys() for m in load.epp(k)["metrics"]}
    for part, names in (("vllm", vllm_names), ("epp", epp_names)):
        for row in spec[part]:
            for need in row["needs"]:
                for alt in need["any"]:
                    assert alt["metric"] in names, (row["signal"], alt["metric"])


def _row(part: str, signal: str) -> dict:
    spec = yaml.safe_load(M.ROWS.read_text(encoding="utf-8"))
    (row,) = [r for r in spec[part] if r["signal"].startswith(signal)]
    return row


def test_known_cells():
    versions = load.vllm_versions()

    def vllm(signal: str) -> dict[str, str]:
        return {v: c.status for v, c in zip(versions, M.vllm_cells(_row("vllm", signal)), strict=True)}

    assert vllm("KV transfers, NIXL")["0.11.0"] == "absent"
    assert vllm("KV transfers, NIXL")["0.11.1"] == "full"
    assert {v for v, s in vllm("KV transfers, Mooncake").items() if s == "full"} == {"0.33.0"}
    assert vllm("Recomputed prompt tokens") == {v: "full" if v == "0.16.0" else "absent" for v in versions}
    assert vllm("KV delivered to decode")["0.14.0"] == "absent" and vllm("KV delivered")["0.16.0"] == "full"
    keys = load.epp_keys()
    decisions = dict(zip(keys, M.epp_cells(_row("epp", "P/D decisions"), keys), strict=True))
    assert decisions["llm-d-inference-scheduler-v0.4.0"].status == "partial"
    assert "model_name" in decisions["llm-d-inference-scheduler-v0.4.0"].why
    assert decisions["llm-d-inference-scheduler-v0.5.1"].status == "full"
    ttft = dict(zip(keys, M.epp_cells(_row("epp", "Gateway TTFT"), keys), strict=True))
    assert {k for k, c in ttft.items() if c.status == "full"} == {
        "llm-d-router-v0.9.0", "llm-d-router-v0.10.0", "llm-d-router-main"}
