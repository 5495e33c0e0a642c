"""gpu_check.json -> gpu_check.md: the device, one table per section, what was skipped and why."""

from __future__ import annotations

# Columns shown first when a section's rows have them; other keys follow in their own order.
LEAD = ("case", "encoder", "dtype", "batch", "sequence", "images_per_s", "tokens_per_s", "step_s", "mfu", "mfu_adapted",
        "constrained_tokens_per_s", "unconstrained_tokens_per_s", "constraint_overhead", "peak_memory_mib")
HIDDEN = ("trainable",)  # nested values: in the JSON only


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1e9:
            return f"{value:.3g}"
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def rows_table(rows: list[dict]) -> list[str]:
    keys: list[str] = [k for k in LEAD if any(k in r for r in rows)]
    for r in rows:
        keys += [k for k in r if k not in keys and k not in HIDDEN]
    lines = ["| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
    lines += ["| " + " | ".join(_cell(r.get(k)) for k in keys) + " |" for r in rows]
    return lines


def to_markdown(report: dict) -> str:
    sections = report["sections"]
    env = sections.get("environment", {}).get("info", {})
    lines = [f"# GPU check ({report['mode']})", "",
             f"Started {report['started']}, {report['seconds']} s of a {report['budget_s']:.0f} s budget.", ""]
    if env:
        lines += [f"Device: **{env.get('device_name')}** ({env.get('device_memory_gib', '-')} GiB, compute "
                  f"{env.get('compute_capability', '-')}); torch {env.get('torch')} (CUDA {env.get('torch_cuda')}, "
                  f"cuDNN {env.get('cudnn')}), transformers {env.get('transformers')}, peft {env.get('peft')}, "
                  f"Python {env.get('python')}, {env.get('cpu_count')} CPU cores.", ""]
    lines += ["| section | status | seconds | note |", "| --- | --- | --- | --- |"]
    for name, s in sections.items():
        lines.append(f"| {name} | {s['status']} | {s.get('seconds', '-')} | {s.get('reason') or s.get('model', '')} |")
    for name, s in sections.items():
        if s["status"] != "ok" or not s.get("rows"):
            continue
        lines += ["", f"## {name}", "", f"{s.get('model', '')} on {s.get('device', '?')}.", ""]
        lines += rows_table(s["rows"])
        lines += [""] + [f"- {n}" for n in s.get("notes", [])]
    if report.get("ratios"):
        lines += ["", "## GPU / CPU", "", "| case | GPU | CPU | unit | ratio |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['case']} | {_cell(r['gpu'])} | {_cell(r['cpu'])} | {r['unit']} | **{r['ratio']}** |"
                  for r in report["ratios"]]
    bad = {n: s for n, s in sections.items() if s["status"] != "ok"}
    if bad:
        lines += ["", "## Not measured", ""] + [f"- **{n}** ({s['status']}): {s.get('reason')}" for n, s in bad.items()]
    return "\n".join(lines) + "\n"
