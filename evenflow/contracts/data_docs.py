"""Data Docs that work offline: GX's CDN assets swapped for copies evenflow ships.

GX 1.x writes pages that load Bootstrap, jQuery, bootstrap-table, Font Awesome and more from
public CDNs; opened offline (or on a machine that may not reach them) the index lists nothing,
since its table is built by bootstrap-table, and the validation page has neither styles nor
status icons. :func:`localise_site` rewrites every such reference to a copy under the site's
``static/vendor/`` folder, taken from ``data_docs_assets/`` (vendored from npm; see its
``VENDORED.md``), so a site folder is self-contained wherever it is moved.

:func:`external_asset_refs` finds what a page would fetch from the network (scripts,
stylesheets, images, fonts, CSS imports); plain ``<a href>`` links are not assets and pass.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

logger = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).with_name("data_docs_assets")
"""The vendored packages, one folder each (``<name>-<version>``), with their licences."""

SITE_VENDOR_DIR = "static/vendor"
"""Where a localised site keeps its copies of the vendored packages."""

# Each CDN asset of GX 1.x's page heads (render/view/templates), and the vendored files that
# stand in for it, in load order. An empty tuple drops the tag:
# - Popper is inside Bootstrap's bundle, which replaces bootstrap.min.js;
# - Vega is only used by chart expectations (KL divergence, distinct values), which evenflow's
#   suites do not use; it is not shipped (see VENDORED.md), and a page with a chart is logged.
_FONT_AWESOME = (
    "fontawesome-free-6.6.0/css/fontawesome.min.css",
    "fontawesome-free-6.6.0/css/solid.min.css",
)
_BOOTSTRAP_TABLE = "https://unpkg.com/bootstrap-table@1.19.1/dist/"
_FILTER_CONTROL_CSS = "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.css"
LOCAL_COPIES: dict[str, tuple[str, ...]] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": ("jquery-3.7.1/jquery.min.js",),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap-4.3.1/bootstrap.bundle.min.js",
    ),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap-4.3.1/bootstrap.min.css",
    ),
    f"{_BOOTSTRAP_TABLE}bootstrap-table.min.js": ("bootstrap-table-1.19.1/bootstrap-table.min.js",),
    f"{_BOOTSTRAP_TABLE}bootstrap-table.min.css": (
        "bootstrap-table-1.19.1/bootstrap-table.min.css",
    ),
    f"{_BOOTSTRAP_TABLE}extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.js",
    ),
    # GX asks for the 1.19.0 stylesheet beside the 1.19.1 scripts; 1.19.1's matches the scripts.
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (_FILTER_CONTROL_CSS,),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (_FILTER_CONTROL_CSS,),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": ("bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.js",),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": ("bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.css",),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": ("bootstrap-dark-1.1.0/bootstrap-prefers-dark.min.css",),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": _FONT_AWESOME,
    "https://cdn.jsdelivr.net/npm/vega@5": (),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": (),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": (),
}

# GX's logo comes from its S3 bucket (with the context id in the query string); the site's own
# static/images folder has the same pictures. The dark variant is not shipped: the light one
# stands in.
_GX_IMAGES = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/([\w.-]+)(?:\?[^\"')\s]*)?"
)
_GX_IMAGE_STAND_INS = {"full_logo_dark.png": "logo-long.png"}
_SITE_IMAGES = "static/images"

# A <script src> or <link href> tag naming an external URL (with a script's closing tag).
_EXTERNAL_TAG = re.compile(
    r"<(?P<tag>script|link)\b[^>]*?\b(?:src|href)\s*=\s*[\"'](?P<url>(?:https?:)?//[^\"']+)[\"']"
    r"[^>]*>(?:\s*</script>)?",
    re.IGNORECASE,
)
# A src/href into the site's static folder, as GX writes it relative to the page.
_STATIC_REF = re.compile(
    r"(?P<attr>\b(?:src|href)\s*=\s*[\"'])(?P<ref>(?:\.{1,2}/)*static/[^\"'?#]+)"
)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CSS_URL = re.compile(r"url\(\s*(?P<q>[\"']?)(?P<ref>[^\"')]*?)(?P=q)\s*\)", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"@import\s+(?P<q>[\"'])(?P<ref>[^\"']+)(?P=q)", re.IGNORECASE)
_EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)
_NOT_FILES = re.compile(r"^\s*(?:data:|#|about:|blob:|javascript:)", re.IGNORECASE)

# Attributes whose value a browser fetches, on any tag (href only on the tags below).
_FETCHED_ATTRS = frozenset({"src", "poster", "data", "background"})
_FETCHED_HREF_TAGS = frozenset({"link", "image", "use", "feimage"})


def external_asset_refs(html: str) -> list[str]:
    """Every asset ``html`` would load from another host: scripts, stylesheets, images, fonts.

    Plain links (``<a href>``) are navigation, not assets, and are not reported.
    """
    return [ref for ref in asset_refs(html) if _EXTERNAL.match(ref)]


def asset_refs(html: str) -> list[str]:
    """Every asset reference in ``html``: tag attributes, ``style`` attributes and ``<style>``."""
    parser = _AssetParser()
    parser.feed(html)
    parser.close()
    return parser.refs


def css_asset_refs(css: str) -> list[str]:
    """Every ``url(...)`` and ``@import`` of a stylesheet, comments left out."""
    css = _CSS_COMMENT.sub("", css)
    refs = [match["ref"] for match in _CSS_URL.finditer(css)]
    refs += [match["ref"] for match in _CSS_IMPORT.finditer(css)]
    return [ref for ref in refs if ref.strip()]


def local_file_refs(refs: list[str]) -> list[str]:
    """The references that name files beside the page: not external, not data: or anchors."""
    return [ref for ref in refs if not _EXTERNAL.match(ref) and not _NOT_FILES.match(ref)]


def localise_site(site: Path) -> None:
    """Point every page and stylesheet of a Data Docs site at local copies of its assets.

    The vendored packages a page uses are copied under ``site/static/vendor``; references
    evenflow has no copy for are left as they are and logged (a newer GX may add some).
    """
    used: set[str] = set()
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        rewritten = _localise_page(text, page, site, used)
        if rewritten != text:
            page.write_text(rewritten, encoding="utf-8")
    for stylesheet in sorted(site.rglob("*.css")):
        text = stylesheet.read_text(encoding="utf-8")
        rewritten = _local_gx_images(text, stylesheet, site)
        if rewritten != text:
            stylesheet.write_text(rewritten, encoding="utf-8")
    _copy_packages(used, site / SITE_VENDOR_DIR)


def _localise_page(text: str, page: Path, site: Path, used: set[str]) -> str:
    """One page with its CDN tags replaced by local ones and GX's S3 images by the site's."""
    if "vegaEmbed(" in text:
        logger.warning("Data Docs page %s has a chart, which needs Vega: it stays empty", page)

    def replace(match: re.Match[str]) -> str:
        url = match["url"]
        if url not in LOCAL_COPIES:
            logger.warning("Data Docs page %s loads %s, which evenflow has no copy of", page, url)
            return match[0]
        files = LOCAL_COPIES[url]
        used.update(files)
        hrefs = [_relative(site / SITE_VENDOR_DIR / file, page) for file in files]
        return "\n".join(_tag(match["tag"].lower(), href) for href in hrefs)

    return _repair_static_refs(
        _local_gx_images(_EXTERNAL_TAG.sub(replace, text), page, site), page, site
    )


def _repair_static_refs(text: str, page: Path, site: Path) -> str:
    """``text`` with references to ``static/`` that miss their file pointed at the right folder.

    GX 1.x links a validation page's favicon one folder short (the page sits four folders deep).
    """

    def replace(match: re.Match[str]) -> str:
        ref = match["ref"]
        target = site / ref.lstrip("./")
        if (page.parent / ref).exists() or not target.is_file():
            return match[0]
        return match["attr"] + _relative(target, page)

    return _STATIC_REF.sub(replace, text)


def _local_gx_images(text: str, referrer: Path, site: Path) -> str:
    """``text`` with GX's S3 image URLs pointing at the site's own ``static/images``."""

    def replace(match: re.Match[str]) -> str:
        name = _GX_IMAGE_STAND_INS.get(match[1], match[1])
        local = site / _SITE_IMAGES / name
        if not local.is_file():
            logger.warning("Data Docs file %s shows %s, which GX did not ship", referrer, match[0])
            return match[0]
        return _relative(local, referrer)

    return _GX_IMAGES.sub(replace, text)


def _tag(kind: str, href: str) -> str:
    if kind == "script":
        return f'<script src="{href}"></script>'
    return f'<link rel="stylesheet" href="{href}">'


def _relative(target: Path, referrer: Path) -> str:
    """``target`` as a URL relative to the folder of ``referrer`` (works from file://)."""
    return Path(os.path.relpath(target, referrer.parent)).as_posix()


def _copy_packages(files: set[str], target: Path) -> None:
    """Copy each whole vendored package a page used (fonts and licence included)."""
    for package in sorted({file.split("/", 1)[0] for file in files}):
        shutil.copytree(ASSETS_DIR / package, target / package, dirs_exist_ok=True)


class _AssetParser(HTMLParser):
    """Collects the references a browser would fetch while rendering a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name in _FETCHED_ATTRS or (
                name in {"href", "xlink:href"} and tag in _FETCHED_HREF_TAGS
            ):
                self.refs.append(value)
            elif name == "srcset":
                self.refs += [part.split()[0] for part in value.split(",") if part.strip()]
            elif name == "style":
                self.refs += css_asset_refs(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.refs += css_asset_refs(data)
