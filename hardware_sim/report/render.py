"""Write a report: report.json, and its document as Markdown (or one self-contained HTML file)
beside the PNG plots. HTML embeds the PNGs (base64), so the one file is the whole report."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from dsatgo_deploy.errors import UserError
from dsatgo_deploy.fileio import (atomic_directory, atomic_file, check_files_replaceable, check_output_folder,
                                  folder_manifest, record_written, write_json)

from .document import Block, document
from .plots import PLOT_FILES, draw_plots

FORMATS = ("md", "html")
REPORT_JSON = "report.json"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out += ["#" * int(b.kind[1]) + " " + b.text, ""]
        elif b.kind == "p":
            out += [b.text, ""]
        elif b.kind == "table":
            out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            out.append("|" + "|".join("---:" if r else "---" for r in b.right) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("")
        elif b.kind == "img":
            out += [f"![{b.items[0] if b.items else ''}]({b.text})", ""]
        elif b.kind == "ul":
            out += [f"- {item}" for item in b.items] + [""]
        elif b.kind == "code":
            out += ["```", b.text, "```", ""]
    return "\n".join(out).rstrip() + "\n"


def _inline_html(text: str) -> str:
    """Escape, then the two inline marks the document uses: **bold** and `code`."""
    parts = html.escape(str(text)).split("`")
    for i in range(len(parts)):
        if i % 2:
            parts[i] = f"<code>{parts[i]}</code>"
        else:
            bold = parts[i].split("**")
            parts[i] = "".join(f"<b>{s}</b>" if j % 2 else s for j, s in enumerate(bold))
    return "".join(parts)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0 1.2em;font-size:0.9em}"
        "th,td{border:1px solid #ccc;padding:3px 8px;vertical-align:top}th{background:#f2f2f2}"
        "td.r{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}"
        "pre{background:#f6f6f6;padding:0.8em;overflow-x:auto}code{font-size:0.95em}")


def _to_html(blocks: list[Block], folder: Path) -> str:
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
           f"<title>{html.escape(blocks[0].text if blocks else 'report')}</title>",
           f"<style>{_CSS}</style></head><body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{_inline_html(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{_inline_html(b.text)}</p>")
        elif b.kind == "table":
            out.append("<table><tr>" + "".join(f"<th>{_inline_html(h)}</th>" for h in b.header) + "</tr>")
            for row in b.rows:
                out.append("<tr>" + "".join(f"<td{' class=r' if r else ''}>{_inline_html(c)}</td>"
                                            for c, r in zip(row, b.right)) + "</tr>")
            out.append("</table>")
        elif b.kind == "img":
            data = base64.b64encode((folder / b.text).read_bytes()).decode("ascii")
            out.append(f"<p><img alt='{html.escape(b.items[0] if b.items else '')}' src='data:image/png;base64,{data}'></p>")
        elif b.kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "code":
            out.append(f"<pre>{html.escape(b.text)}</pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render(report: dict[str, Any], folder: str | os.PathLike, fmt: str = "md", stem: str = "report") -> list[Path]:
    """Write ``<stem>.md`` (or ``.html``, images embedded) and the PNG plots into ``folder``; return the paths."""
    if fmt not in FORMATS:
        raise UserError(f"unknown report format {fmt!r} (known: {', '.join(FORMATS)})")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plots, note = draw_plots(report, folder)
    blocks = document(report, plots, note)
    path = folder / f"{stem}.{fmt}"
    text = _to_markdown(blocks) if fmt == "md" else _to_html(blocks, folder)
    with atomic_file(path, "w") as handle:
        handle.write(text)
    return [path] + [folder / name for name in plots.values() if name]


def report_file_names(fmt: str = "md", json_name: str = REPORT_JSON) -> list[str]:
    """Every file a report may write into its folder."""
    return [json_name, f"report.{fmt}", *PLOT_FILES.values()]


def check_report_output(folder: str | os.PathLike, fmt: str = "md", json_name: str = REPORT_JSON) -> None:
    """Before any work: UserError when the report cannot go into ``folder`` (a new folder, or an existing
    one where it replaces only report files this tool wrote)."""
    folder = Path(folder)
    if folder.is_dir() and any(folder.iterdir()):
        check_files_replaceable(folder, report_file_names(fmt, json_name))
    else:
        check_output_folder(folder)


def write_report(report: dict[str, Any], folder: str | os.PathLike, fmt: str = "md",
                 json_name: str = REPORT_JSON) -> list[Path]:
    """Write report.json and its rendering into ``folder``; return every path written. A new folder
    is built under a temporary name (with its manifest.json); in an existing one only report files
    this tool wrote are replaced, and the folder's manifest records them."""
    folder = Path(folder)
    check_report_output(folder, fmt, json_name)
    if folder.is_dir() and any(folder.iterdir()):
        write_json(folder / json_name, report)
        paths = [folder / json_name] + render(report, folder, fmt)
        record_written(folder, [p.name for p in paths])
        return paths
    with atomic_directory(folder) as staging:
        write_json(staging / json_name, report)
        names = [json_name] + [p.name for p in render(report, staging, fmt)]
        folder_manifest(staging, names, kind="report")
    return [folder / name for name in names]
